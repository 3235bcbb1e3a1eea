"""Per-run context of the graph: who the turn is for, and the services nodes may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adapters.backend import ChatBackend
from graph.config import GraphSettings
from graph.experiments import ExperimentSource
from graph.prompts import PromptLibrary
from memory.persona.instructions import ProfileUpdate
from memory.records.store import RecordStore
from memory.records.tables import Turn, utcnow
from memory.service import MemoryService

Detector = Callable[[str], Awaitable[list[ProfileUpdate]]]
"""A message → the profile updates it asks for."""


class AfterTurn(Protocol):
    """Called in a thread once a turn is recorded and indexed.

    The API's keeps the prompt as sent (naming the turns whose text it holds) and enqueues
    distillation.
    """

    def __call__(
        self,
        user_turn: Turn,
        assistant_turn: Turn,
        prompt: Sequence[dict[str, str]],
        /,
        memory_ids: Sequence[str] = (),
        history_ids: Sequence[str] | None = None,
    ) -> None:
        """Keep the prompt and enqueue distillation.

        ``memory_ids``: the memories the prompt's system message quotes; ``history_ids``:
        the turns whose messages it holds (``None``: unknown, matched in the thread).
        """
        ...


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
    experiments: ExperimentSource | None = None
    """The running experiments (``graph.experiment_book``); ``None``: no experiments."""
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
    temporary: bool = False
    """A temporary chat: recall nothing, apply instructions to this turn only, record
    nothing (no turns, no thread state, no distillation, no exposure)."""
