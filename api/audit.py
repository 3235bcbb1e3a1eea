"""Auditing at the HTTP layer: which requests are audited, and who made them.

``AuditMiddleware`` records, after the response, every request to an admin route (but
the ``/metrics`` scrape), every ``DELETE``, and every adapter promotion or rollback: who
(the key's kind, user and id), what (method, route template, the path's ids, status),
when. Never a body, a query or a raw path: ids name what was done without holding
content. The entries are in ``memory.records.audit``; ``GET /v1/admin/audit`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlmodel import Session, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import require_admin
from graph import telemetry
from memory.records.audit import AuditEntry, record
from memory.records.keys import hash_key
from memory.records.tables import ApiKey

log = logging.getLogger(__name__)

NOT_AUDITED = {("GET", "/metrics")}
"""Admin routes that are reads by machines, every few seconds: auditing them would bury
the log's actions."""


def _needs_admin(dependant: Dependant) -> bool:
    return any(d.call is require_admin or _needs_admin(d) for d in dependant.dependencies)


def is_audited(route: Any, method: str) -> bool:
    """Whether a request of ``method`` to ``route`` (Starlette's matched route) is audited."""
    path: str | None = getattr(route, "path", None)
    if path is None or (method, path) in NOT_AUDITED:
        return False
    if method == "DELETE":
        return True
    if method == "POST" and "/adapters/" in path and path.endswith(("/promote", "/rollback")):
        return True
    return isinstance(route, APIRoute) and _needs_admin(route.dependant)


def actor_of(session: Session, authorization: str, admin_key: str | None) -> dict[str, Any]:
    """``actor``, ``user_id`` and ``key_id`` of the key an ``Authorization`` header sent.

    The key is named whether or not it was accepted (the entry's status says that), and
    a revoked key still names its owner: a user deleting themselves revokes their key.
    """
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return {"actor": "anonymous"}
    if admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode()):
        return {"actor": "admin"}
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None:
        return {"actor": "anonymous"}
    return {
        "actor": "admin" if row.is_admin else "user",
        "user_id": row.user_id,
        "key_id": row.id,
    }


class AuditMiddleware:
    """Write an audit entry for each audited request, once its response is sent."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, note its status, then audit it if its route says so."""
        services = (
            getattr(scope["app"].state, "services", None) if scope["type"] == "http" else None
        )
        if services is None:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        who: dict[str, Any] | None = None
        if method == "DELETE":  # it may revoke the very key that asked for it: name it first
            with contextlib.suppress(Exception):  # a store that is down answers in the route
                who = await asyncio.to_thread(self._actor, scope, services)
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            if route is not None and is_audited(route, method):
                await self._write(scope, services, who, route.path, status)

    @staticmethod
    def _actor(scope: Scope, services: Any) -> dict[str, Any]:
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        admin = services.settings.admin_key
        admin_key = admin.get_secret_value() if admin is not None else None
        with services.store.session() as session:
            return actor_of(session, authorization, admin_key)

    @classmethod
    async def _write(
        cls, scope: Scope, services: Any, who: dict[str, Any] | None, path: str, status: int
    ) -> None:
        params = {k: str(v)[:200] for k, v in (scope.get("path_params") or {}).items()}

        def write() -> None:
            entry = AuditEntry(
                **(who if who is not None else cls._actor(scope, services)),
                method=scope["method"],
                route=path,
                target=params,
                status=status,
                request_id=telemetry.log_fields().get("request_id"),
            )
            record(services.engine, entry=entry)

        try:
            await asyncio.to_thread(write)
        except Exception:  # the response is sent; losing the entry must not go unseen
            log.exception("could not write the audit entry of %s %s", scope["method"], path)
