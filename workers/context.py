"""What tasks work with: the composition root's core, and the graph's services.

The embedded worker shares the server's core (one process, one embedded Chroma); a
standalone worker builds its own from settings on its first task (``wiring.services``), and
loads the chat model only when a task needs it (the prompt optimizer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from memory.deletion import Deletion
from memory.service import MemoryService

if TYPE_CHECKING:
    from graph.context import Services
    from wiring.services import Core
    from wiring.settings import Settings

_lock = threading.Lock()


@dataclass
class WorkerContext:
    """Long-lived collaborators of tasks, built once per worker process."""

    core: Core
    make_graph_services: Callable[[], Services] | None = None
    """Builds the graph's services; ``None``: the core's (the embedded worker shares the
    server's instead)."""
    _graph: Services | None = field(default=None, init=False)

    @property
    def engine(self) -> Engine:
        """The record store."""
        return self.core.engine

    @property
    def memory(self) -> MemoryService:
        """The memory service."""
        return self.core.memory

    @property
    def deletion(self) -> Deletion:
        """The deletion cascades, with every purger the root wires in."""
        return self.core.deletion

    @property
    def session_idle_s(self) -> float:
        """A session whose last turn is older than this has ended (summaries)."""
        return self.core.settings.worker.session_idle_s

    def graph_services(self) -> Services:
        """The turn graph's services (chat model, prompts), built on first use."""
        with _lock:
            if self._graph is None:
                make = self.make_graph_services or self.core.graph_services
                self._graph = make()
            return self._graph


_opened: dict[int, WorkerContext] = {}


def open_context(settings: Settings) -> WorkerContext:
    """Open (once per settings object) the core a standalone worker uses."""
    from wiring.services import build_core

    with _lock:
        ctx = _opened.get(id(settings))
        if ctx is None:
            ctx = WorkerContext(core=build_core(settings))
            _opened[id(settings)] = ctx
        return ctx
