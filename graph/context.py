"""Per-run context of the graph: who the turn is for, and the services nodes may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapters.backend import ChatBackend
from graph.config import GraphSettings
from graph.prompts import PromptLibrary
from memory.persona.instructions import ProfileUpdate
from memory.records.store import RecordStore
from memory.records.tables import Turn, utcnow
from memory.service import MemoryService

Detector = Callable[[str], Awaitable[list[ProfileUpdate]]]
"""A message → the profile updates it asks for."""
AfterTurn = Callable[[Turn, Turn, Sequence[dict[str, str]]], None]
"""``(user_turn, assistant_turn, prompt_messages)``: called in a thread once a turn is
recorded and indexed. The API's keeps the prompt as sent and enqueues distillation."""


@dataclass(frozen=True)
class Services:
    """Long-lived collaborators, built once per process at the entry point."""

    store: RecordStore
    backend: ChatBackend
    prompts: PromptLibrary
    settings: GraphSettings
    memory: MemoryService
    clock: Callable[[], datetime] = field(default=utcnow)
    after_turn: AfterTurn | None = None
    """``None`` (tests, benchmarks, local chat): distill inline instead."""
    detect: Detector | None = None
    """Instruction detection beyond the rules (``memory.persona.instructions_llm``); ``None``: the
    rules alone."""


@dataclass(frozen=True)
class TurnContext:
    """Run-scoped values. ``user_id`` comes from the API key, never from a body or a model."""

    user_id: str
    thread_id: str
    services: Services
    dry_run: bool = False
    """Preview: compute everything up to the route, persist nothing."""
