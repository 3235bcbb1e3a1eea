"""Prometheus metrics, on a registry of the app's own (one per app, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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

    def render(self) -> bytes:
        """The text exposition format."""
        return bytes(generate_latest(self.registry))
