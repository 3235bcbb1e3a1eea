"""Observability: node latency histograms, JSON logs with ids, turn traces, the dashboard."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from api.logs import QUIET, JsonFormatter, configure_logging, configure_tracing
from tests.conftest import ADMIN_KEY, REPO_ROOT, Api
from wiring.settings import Settings

NODES = (
    "load_context",
    "apply_instructions",
    "recall",
    "compose_prompt",
    "route",
    "generate",
    "record",
)
SECRET = "my passport number is zebra-quokka-4471"


def _chat(content: str) -> dict[str, object]:
    return {"model": "attune", "messages": [{"role": "user", "content": content}]}


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    """Every log line of the test at INFO (the default level), by the JSON formatter."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(level=logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed once: OpenTelemetry allows one), with an
    in-memory exporter that stops keeping spans after the module."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()
    exporter.shutdown()


async def test_each_node_has_a_latency_histogram(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.post("/v1/chat/completions", json=_chat("hello"), headers=api.auth(key))
    assert r.status_code == 200, r.text
    text = (await api.client.get("/metrics", headers=api.auth(ADMIN_KEY))).text
    counts = {
        s.labels["node"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "attune_graph_node_seconds"
        for s in family.samples
        if s.name.endswith("_count")
    }
    assert all(counts.get(node, 0) >= 1 for node in NODES), counts


async def test_chat_logs_are_json_with_ids_and_no_message_text(
    api: Api, json_lines: list[str]
) -> None:
    uid, key = api.new_user()
    headers = {**api.auth(key), "X-Request-ID": "req-obs-1"}
    r = await api.client.post("/v1/chat/completions", json=_chat(SECRET), headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "req-obs-1"
    meta = r.json()["attune"]
    records = [json.loads(line) for line in json_lines]  # every line is JSON
    turn = [x for x in records if x.get("turn_id") == meta["turn_id"]]
    assert turn, records
    assert all(
        x["request_id"] == "req-obs-1"
        and x["user_id"] == uid
        and x["thread_id"] == meta["thread_id"]
        for x in turn
    )
    assert any(x["message"].startswith("turn ok") for x in turn)
    for line in json_lines:
        assert "zebra-quokka" not in line and "passport" not in line


async def test_a_request_id_is_made_when_none_is_sent_and_a_bad_one_is_replaced(
    api: Api,
) -> None:
    r = await api.client.get("/healthz")
    made = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    r = await api.client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_a_turn_is_traced_node_by_node(api: Api, spans: InMemorySpanExporter) -> None:
    spans.clear()
    uid, key = api.new_user()
    r = await api.client.post("/v1/chat/completions", json=_chat("hi"), headers=api.auth(key))
    assert r.status_code == 200, r.text
    turn_id = r.json()["attune"]["turn_id"]
    finished = spans.get_finished_spans()
    turns = [
        s
        for s in finished
        if s.name == "turn" and (s.attributes or {}).get("attune.turn_id") == turn_id
    ]
    assert len(turns) == 1
    root = turns[0]
    assert (root.attributes or {}).get("attune.user_id") == uid
    children = [
        s for s in finished if s.parent is not None and s.parent.span_id == root.context.span_id
    ]
    assert [s.name for s in sorted(children, key=lambda s: s.start_time or 0)] == [
        f"node {n}" for n in NODES
    ]
    assert all(s.context.trace_id == root.context.trace_id for s in children)


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


async def test_every_dashboard_metric_exists(api: Api) -> None:
    _, key = api.new_user()
    await api.client.post("/v1/chat/completions", json=_chat("hello"), headers=api.auth(key))
    text = (await api.client.get("/metrics", headers=api.auth(ADMIN_KEY))).text
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in _SUFFIXES.get(family.type, ("",))
    }
    dashboard = json.loads((REPO_ROOT / "deploy" / "grafana" / "attune.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\battune_[a-z_]+", e)}
    assert used and used <= exported, sorted(used - exported)
    nodes = {"attune_graph_node_seconds_bucket", "attune_time_to_first_token_seconds_bucket"}
    assert nodes <= used


def test_the_dashboard_is_in_the_repository() -> None:
    path = Path(REPO_ROOT / "deploy" / "grafana" / "attune.json")
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and len({p["id"] for p in dashboard["panels"]}) == len(
        dashboard["panels"]
    )


def test_json_logging_covers_uvicorn_and_keeps_row_loggers_quiet() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    try:
        config = configure_logging("json", "DEBUG")
        assert isinstance(handler.formatter, JsonFormatter)
        assert config["loggers"]["uvicorn.access"] == {
            "handlers": [],
            "propagate": True,
            "level": "DEBUG",
            "filters": ["no_query"],
        }
        # Their DEBUG lines print rows and checkpoints: message text.
        assert all(logging.getLogger(name).level >= logging.WARNING for name in QUIET)
        assert configure_logging("text", "INFO")["loggers"]["uvicorn"]["propagate"] is False
    finally:
        root.removeHandler(handler)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def test_settings_read_the_log_format_and_the_otel_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings(data_dir=tmp_path).log_format == "text"
    assert Settings(data_dir=tmp_path).otel_endpoint is None
    monkeypatch.setenv("ATTUNE_LOG_FORMAT", "json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    s = Settings(data_dir=tmp_path)
    assert s.log_format == "json" and s.otel_endpoint == "http://collector:4317"
    monkeypatch.setenv("ATTUNE_OTEL_ENDPOINT", "http://mine:4317")
    assert Settings(data_dir=tmp_path).otel_endpoint == "http://mine:4317"
    assert configure_tracing(None) is False


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_never_holds_a_query_string(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import logging.config

    access = logging.getLogger("uvicorn.access")
    saved = (access.handlers[:], access.filters[:], access.propagate, access.level)
    caught = io.StringIO()
    root_handler = logging.StreamHandler(caught)  # where JSON lines go: the root's handlers
    logging.getLogger().addHandler(root_handler)
    try:
        logging.config.dictConfig(configure_logging(log_format, "INFO"))
        # As uvicorn logs a request: client, method, full path, HTTP version, status.
        args = ("127.0.0.1:5000", "GET", "/v1/users/u/memories/search?q=my+secret", "1.1", 200)
        access.info('%s - "%s %s HTTP/%s" %d', *args)
        out = capsys.readouterr()
        logged = out.out + out.err + caught.getvalue()
        assert "/memories/search" in logged  # the line was written, without its query
        assert "secret" not in logged
    finally:
        logging.getLogger().removeHandler(root_handler)
        access.handlers[:], access.filters[:] = saved[0], saved[1]
        access.propagate, access.level = saved[2], saved[3]
