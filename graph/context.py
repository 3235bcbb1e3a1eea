"""Per-run context of the graph: who the turn is for, and the services nodes may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from adapters.backend import ChatBackend
from graph.config import GraphSettings
from graph.prompts import PromptLibrary
from memory.records import utcnow
from memory.service import MemoryService
from memory.store import RecordStore


@dataclass(frozen=True)
class Services:
    """Long-lived collaborators, built once per process at the entry point."""

    store: RecordStore
    backend: ChatBackend
    prompts: PromptLibrary
    settings: GraphSettings
    memory: MemoryService
    clock: Callable[[], datetime] = field(default=utcnow)


@dataclass(frozen=True)
class TurnContext:
    """Run-scoped values. ``user_id`` comes from the API key, never from a body or a model."""

    user_id: str
    thread_id: str
    services: Services
    dry_run: bool = False
    """Preview: compute everything up to the route, persist nothing."""
