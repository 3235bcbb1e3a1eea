"""Structured logs and traces for the server: JSON lines with ids, request ids, OTLP spans.

With ``ATTUNE_LOG_FORMAT=json`` every log line (the app's and uvicorn's) is one JSON
object carrying the ids bound in its context: the request id (``RequestIdMiddleware``) and,
inside a turn, the user, thread and turn ids (``graph.telemetry.turn_scope``). Ids only:
the fields are fixed, and no code of ours logs message text.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph import telemetry

REQUEST_ID_HEADER = "X-Request-ID"
QUIET = ("aiosqlite", "sqlalchemy.engine")
"""Loggers whose INFO and DEBUG lines print statements, rows and checkpoints (message
text): kept at WARNING or above whatever ``log_level`` is."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""A client's request id is kept only if it is short and plain (no log injection)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, bound ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **telemetry.log_fields(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class DropQuery(logging.Filter):
    """Keep query strings out of uvicorn's access log: a search's ``?q=`` is user text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Cut the query off the logged path (uvicorn's args: client, method, path, …)."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(log_format: str, level: str) -> dict[str, Any]:
    """Format the root logger's handlers as ``log_format``; return uvicorn's ``log_config``.

    ``load_settings`` has installed a text handler on the root logger. For ``json`` its
    formatter is replaced, and the returned config sends uvicorn's loggers (errors and
    the access log) to the root, so they are JSON too. For ``text``: uvicorn's default.
    Either way the loggers in ``QUIET`` never log below WARNING (their INFO and DEBUG
    lines print statements, rows and checkpoints).
    """
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    if log_format != "json":
        import copy

        from uvicorn.config import LOGGING_CONFIG

        config = copy.deepcopy(LOGGING_CONFIG)
        config.setdefault("filters", {})["no_query"] = {"()": DropQuery}
        config["loggers"]["uvicorn.access"]["filters"] = ["no_query"]
        return config
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    to_root = {"handlers": [], "propagate": True, "level": level.upper()}
    loggers = {name: dict(to_root) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    loggers["uvicorn.access"]["filters"] = ["no_query"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_query": {"()": DropQuery}},
        "loggers": loggers,
    }


def configure_tracing(endpoint: str | None) -> bool:
    """Export spans to the OTLP/gRPC collector at ``endpoint``; ``False`` when it is unset.

    Installs the process's tracer provider (once: OpenTelemetry ignores a second one).
    The graph's spans (``graph.telemetry``) then reach the collector in batches.
    """
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "attune"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return True


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is plain enough to log, else a new one."""
    for name, value in scope.get("headers") or []:
        if name == b"x-request-id":
            sent: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(sent):
                return sent
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Bind a request id to everything the request logs, and echo it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take or make the id, bind it (turns started here inherit it), add the header."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0] != header[0]),
                    header,
                ]
            await send(message)

        with telemetry.bind(request_id=request_id):
            await self.app(scope, receive, with_header)
