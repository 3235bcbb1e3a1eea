"""What tasks work with: the record store's engine, the memory service, the graph's services.

The embedded worker shares the server's (one process, one embedded Chroma); a standalone
worker opens its own from settings on its first task, and loads the chat model only when a
task needs it (the prompt optimizer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from memory.service import MemoryService

if TYPE_CHECKING:
    from api.settings import Settings
    from graph.context import Services

_lock = threading.Lock()


@dataclass
class WorkerContext:
    """Long-lived collaborators of tasks, built once per worker process."""

    engine: Engine
    memory: MemoryService
    make_graph_services: Callable[[], Services]
    session_idle_s: float = 1800.0
    """A session whose last turn is older than this has ended (summaries)."""
    _graph: Services | None = field(default=None, init=False)

    def graph_services(self) -> Services:
        """The turn graph's services (chat model, prompts), built on first use."""
        with _lock:
            if self._graph is None:
                self._graph = self.make_graph_services()
            return self._graph


_opened: dict[int, WorkerContext] = {}


def open_context(settings: Settings) -> WorkerContext:
    """Open (once per settings object) the engine and memory service a worker uses."""
    from api.services import build_memory  # entry-point wiring, shared with the server
    from memory.records import db

    with _lock:
        ctx = _opened.get(id(settings))
        if ctx is None:
            engine = db.open_engine(settings.db)
            from adapters.deletion import derived_files
            from adapters.registry import install_retirement_hook

            # deletion cascades retire adapters trained on the data and delete its files
            install_retirement_hook(engine, derived_files(settings.model, settings.training))
            memory = build_memory(settings, engine)

            def graph_services() -> Services:
                from adapters.backend import make_backend
                from graph.context import Services
                from graph.prompts import PromptLibrary
                from memory.records.store import RecordStore

                return Services(
                    store=RecordStore(engine),
                    backend=make_backend(settings.model),
                    prompts=PromptLibrary(),
                    settings=settings.graph,
                    memory=memory,
                )

            ctx = WorkerContext(
                engine=engine,
                memory=memory,
                make_graph_services=graph_services,
                session_idle_s=settings.worker.session_idle_s,
            )
            _opened[id(settings)] = ctx
        return ctx
