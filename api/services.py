"""The server's services: the served stack (``wiring.stack``) plus the server's metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from adapters.backend import ChatBackend
from api.experiments import guard_loop
from api.metrics import Metrics
from memory.records import repo
from memory.records.store import RecordStore
from memory.retrieval.protocols import Embedder
from wiring.settings import Settings
from wiring.stack import Stack, open_stack


@dataclass
class AppServices(Stack):
    """Everything a request handler may use; kept on ``app.state.services``."""

    metrics: Metrics = field(default_factory=Metrics)


def bootstrap_admin_key(store: RecordStore, settings: Settings) -> str | None:
    """When no admin key is configured, create one on first start and return it (once)."""
    if settings.admin_key is not None:
        return None
    with store.session() as session:
        key = repo.ensure_admin_key(session)
        session.commit()
    return key


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    backend: ChatBackend | None = None,
    embedder: Embedder | None = None,
) -> AsyncIterator[AppServices]:
    """Open the served stack with the server's metrics; close it on exit.

    ``backend`` replaces the configured one (tests of HTTP logic use a scripted model);
    ``embedder`` shares one loaded embedding model between several apps (tests).
    """
    async with open_stack(settings, backend=backend, embedder=embedder) as stack:
        services = AppServices(
            **{f.name: getattr(stack, f.name) for f in dataclasses.fields(stack)}
        )
        services.metrics.watch(stack.engine)
        async with guard_loop(
            stack.engine, settings.experiments, on_stop=stack.experiments.invalidate
        ):
            yield services
