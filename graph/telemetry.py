"""What a turn tells the outside: node latencies, log fields and trace spans.

Three things, none of which changes what a node does:

- ``NODE_SECONDS``, a Prometheus histogram of each node's wall time, on a registry of this
  module's own (``REGISTRY``); the API exports it beside its metrics (``api.metrics``).
- Log fields (request, user, thread and turn ids) in a context variable, set by whoever
  starts the work (``bind``); ``api.logs`` writes them into every JSON log line. Ids only:
  nothing here ever holds message text.
- OpenTelemetry spans for the turn and each node. Without a configured tracer provider
  the API's no-op tracer makes them nearly free; ``api.logs.configure_tracing`` installs
  the real one when an endpoint is set.

``timed`` wraps a node function when the graph is built (``graph.builder``), so node
bodies stay as they are.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Histogram

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

TRACER_NAME = "attune.graph"

NODE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Finer than request latency: most nodes take a few milliseconds."""

REGISTRY = CollectorRegistry(auto_describe=True)
"""The graph's metrics. One per process: nodes run wherever the graph is compiled, and the
histogram is label-only (no per-app state), so every app in a process may export it."""

NODE_SECONDS = Histogram(
    "attune_graph_node_seconds",
    "Wall time of one run of a graph node (generate includes the model's generation).",
    ["node"],
    buckets=NODE_BUCKETS,
    registry=REGISTRY,
)

LOG_FIELDS = ("request_id", "user_id", "thread_id", "turn_id")
"""The ids a log line may carry; values are ids, never content."""

_NONE: Mapping[str, str] = MappingProxyType({})
_fields: ContextVar[Mapping[str, str]] = ContextVar("attune_log_fields", default=_NONE)
_timings: ContextVar[list[tuple[str, float]] | None] = ContextVar("attune_timings", default=None)


def log_fields() -> Mapping[str, str]:
    """The ids bound in the current context (``request_id``, ``user_id``, ...)."""
    return _fields.get()


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    """Add ids to the log fields for the ``with`` block (and tasks started inside it).

    ``None`` values are left out. Only the names in ``LOG_FIELDS`` are accepted, so a
    caller cannot smuggle content into the logs by a new name.
    """
    unknown = set(fields) - set(LOG_FIELDS)
    if unknown:
        raise ValueError(f"not log fields: {sorted(unknown)}")
    bound = {**_fields.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _fields.set(MappingProxyType(bound))
    try:
        yield
    finally:
        _fields.reset(token)


@contextmanager
def recording() -> Iterator[list[tuple[str, float]]]:
    """Collect ``(node, seconds)`` of the nodes run in this context (a benchmark's view).

    Turns started inside the block (their tasks copy the context) append to the same list.
    """
    found: list[tuple[str, float]] = []
    token = _timings.set(found)
    try:
        yield found
    finally:
        _timings.reset(token)


def timed(name: str, node: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``node``, observed: its wall time goes to ``NODE_SECONDS`` and a span named ``name``.

    The wrapper keeps ``node``'s signature and type hints (``functools.wraps``), which is
    what LangGraph reads to decide what to inject (``runtime``, ``config``).
    """
    observe = NODE_SECONDS.labels(node=name).observe
    tracer = trace.get_tracer(TRACER_NAME)

    @functools.wraps(node)
    async def observed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            with tracer.start_as_current_span(f"node {name}", attributes={"graph.node": name}):
                return await node(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            observe(elapsed)
            sink = _timings.get()
            if sink is not None:
                sink.append((name, elapsed))

    return observed


@contextmanager
def turn_scope(*, user_id: str, thread_id: str, turn_id: str) -> Iterator[None]:
    """Bind a turn's ids to its logs and wrap it in a ``turn`` span; log how it ended."""
    tracer = trace.get_tracer(TRACER_NAME)
    attributes: dict[str, Any] = {
        "attune.user_id": user_id,
        "attune.thread_id": thread_id,
        "attune.turn_id": turn_id,
    }
    started = time.perf_counter()
    outcome = "failed"
    with (
        bind(user_id=user_id, thread_id=thread_id, turn_id=turn_id),
        tracer.start_as_current_span("turn", attributes=attributes),
    ):
        try:
            yield
            outcome = "ok"
        finally:
            ms = (time.perf_counter() - started) * 1000
            log.info("turn %s in %.1f ms", outcome, ms)
