"""The FastAPI application."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.backend import ChatBackend
from api.admission import close_gate
from api.audit import AuditMiddleware
from api.errors import ERROR_RESPONSES, error_body, install_error_handlers
from api.logs import RequestIdMiddleware
from api.routes import (
    admin,
    audit,
    chat,
    experiments,
    feedback,
    health,
    jobs,
    memories,
    models,
    placements,
    profile,
    prompts,
    threads,
    training,
    users,
    web,
)
from api.services import open_services
from memory.retrieval.protocols import Embedder
from wiring.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    backend: ChatBackend | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """Build the app; services open in its lifespan (``backend``/``embedder`` override)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        async with open_services(settings, backend=backend, embedder=embedder) as services:
            app.state.services = services
            log.info(
                "attune ready in %.1fs: backend=%s model=%s db=%s",
                time.perf_counter() - started,
                services.backend.name,
                services.backend.model_id,
                services.engine.url.render_as_string(hide_password=True),
            )
            try:
                yield
            finally:
                await close_gate(app)  # a Redis rate limiter's connections

    app = FastAPI(
        title="Attune",
        version="0.1.0",
        summary="Chat that adapts to each user: memory, persona and per-user LoRA adapters.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    routers = (
        chat,
        models,
        users,
        memories,
        profile,
        prompts,
        training,
        feedback,
        jobs,
        placements,
        experiments,
        threads,
        admin,
        audit,
        health,
        web,
    )
    for module in routers:
        app.include_router(module.router)
    app.add_middleware(AuditMiddleware)  # innermost: sees the matched route and the status
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)  # outermost: even a 413 carries the request id
    return app


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed.

    The body is read here, before the app sees it: a limit enforced while FastAPI reads it
    would surface as FastAPI's generic 400 for an unreadable body. Every route reads the
    whole body anyway, so buffering up to the limit costs nothing extra.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then read and count the body, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk: bytes = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _send_413(send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # later calls wait for the disconnect, as streaming responses do
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body(
            f"the request body is too large; the limit is {limit} bytes (send long "
            "conversations as a thread_id and the new message)",
            "invalid_request_error",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Count requests and time them by route template."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the status and the time to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                services = getattr(scope["app"].state, "services", None)
                if services is not None:
                    route = scope.get("route")
                    path = getattr(route, "path", "unmatched")
                    m = services.metrics
                    m.requests.labels(route=path, method=scope["method"], status=str(status)).inc()
                    m.request_seconds.labels(route=path, method=scope["method"]).observe(
                        time.perf_counter() - started
                    )
            await send(message)

        await self.app(scope, receive, observe)
