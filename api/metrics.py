"""Prometheus metrics, on a registry of the app's own (one per app, so tests can build many)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from adapters.records import AdapterRecord
from graph import telemetry
from memory.records.jobs import Job
from memory.records.tables import utcnow

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The counters and histograms the service exports at ``/metrics``."""

    def __init__(self) -> None:
        """Create the metrics on a fresh registry."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "attune_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "attune_http_request_seconds",
            "HTTP request duration (to the first byte of a streamed body).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.turns = Counter(
            "attune_turns",
            "Chat turns by model target kind and outcome.",
            ["target", "outcome"],
            registry=self.registry,
        )
        self.ttft_seconds = Histogram(
            "attune_time_to_first_token_seconds",
            "Time to the first generated token.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.generation_seconds = Histogram(
            "attune_generation_seconds",
            "Wall time of generation.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "attune_tokens",
            "Tokens by kind (prompt or completion).",
            ["kind"],
            registry=self.registry,
        )
        self.refused = Counter(
            "attune_refused_requests",
            "Chat requests refused before their turn started, by reason (queue_full, "
            "queue_timeout, rate_limited, user_cap).",
            ["reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "attune_turn_queue_depth",
            "Turns waiting for a generation slot in this process.",
            registry=self.registry,
        )
        self.running_turns = Gauge(
            "attune_turns_running",
            "Turns holding a generation slot in this process.",
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "attune_turn_queue_wait_seconds",
            "Time a turn waited for its generation slot (admitted or not).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.registry.register(GraphCollector())

    def watch(self, engine: Engine) -> None:
        """Also export what the database holds: jobs, the queue's age, adapters."""
        self.registry.register(StoreCollector(engine))

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))


class StoreCollector(Collector):
    """Gauges read from the database at scrape time, so they count every process's work.

    Workers on other machines write the same job and adapter tables; counting there, not
    in this process, is what makes the figures true for the whole deployment.
    """

    def __init__(self, engine: Engine) -> None:
        """Count over ``engine``'s tables."""
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """One aggregate query per family."""
        jobs = GaugeMetricFamily(
            "attune_jobs", "Jobs by kind and status.", labels=["kind", "status"]
        )
        oldest = GaugeMetricFamily(
            "attune_jobs_oldest_queued_seconds",
            "Age of the oldest queued job (0 when none waits): a backlog alarm.",
        )
        adapters = GaugeMetricFamily(
            "attune_adapters", "Adapters by owner kind and status.", labels=["owner", "status"]
        )
        with Session(self.engine) as session:
            for kind, status, n in session.exec(
                select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
            ):
                jobs.add_metric([kind, status], n)
            first = session.exec(
                select(func.min(Job.created_at)).where(col(Job.status) == "queued")
            ).one()
            for owner, status, n in session.exec(
                select(AdapterRecord.owner_kind, AdapterRecord.status, func.count()).group_by(
                    AdapterRecord.owner_kind, AdapterRecord.status
                )
            ):
                adapters.add_metric([owner, status], n)
        age = 0.0
        if first is not None:
            first = first if first.tzinfo else first.replace(tzinfo=utcnow().tzinfo)
            age = max(0.0, (utcnow() - first).total_seconds())
        oldest.add_metric([], age)
        yield from (jobs, oldest, adapters)


class GraphCollector(Collector):
    """The graph's node latencies (``graph.telemetry``), exported on the app's registry.

    The histogram lives in the graph's own registry, because the graph must not know the
    API; this forwards it at scrape time.
    """

    def collect(self) -> Iterator[Metric]:
        """The families of the graph's registry."""
        yield from telemetry.REGISTRY.collect()
