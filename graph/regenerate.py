"""Regeneration: another reply to a recorded prompt, exactly as it was sent.

``attune: {"regenerate": turn_id}`` on a chat request asks for an alternative to assistant
turn ``turn_id``. It runs through the turn graph like any turn, so there is one way to
generate and record a reply: the runner starts the graph with a
:class:`~graph.state.Regeneration` in its input, and the graph's entry (:func:`entry`) sends
it to :func:`restore_prompt` instead of the pipeline that builds a new prompt. That node puts
back the stored prompt of the original (system prompt, memories, history as they were) and
its target when still available, so the two replies differ only by sampling; then the
shared ``generate`` and ``record`` nodes run. ``record`` keeps the alternative as another
assistant turn answering the same user turn — which is what makes a (down-voted, up-voted
regeneration) pair — and :func:`thread_update` lets it take the original's place in the
thread's state when the original was its last message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from graph.context import TurnContext
from graph.state import GenerationParams, InputState, Regeneration, Route, TurnState
from memory.records.tables import Turn, new_id

RESTORE = "restore_prompt"


@dataclass(frozen=True)
class RegenerationRequest:
    """What to regenerate: the original reply, the user turn it answers, its prompt."""

    user_id: str
    original: Turn
    user_turn: Turn
    prompt: list[dict[str, str]]
    params: GenerationParams
    turn_id: str = field(default_factory=lambda: new_id("turn"))
    """The new reply's id."""

    def graph_input(self) -> InputState:
        """The turn graph's input for this regeneration (no new message)."""
        return InputState(
            params=self.params,
            user_turn_id=self.user_turn.id,
            assistant_turn_id=self.turn_id,
            regenerate=Regeneration(
                original_id=self.original.id,
                target=self.original.model_target,
                prompt_version=self.original.prompt_version or "",
                prompt=list(self.prompt),
            ),
        )


def entry(state: TurnState) -> str:
    """Where a run of the turn graph starts: a regeneration skips to its stored prompt."""
    return RESTORE if state.regenerate is not None else "load_context"


def route_of(target: str | None, is_available: Callable[[str], bool]) -> Route:
    """The original's target (``user:<adapter>``/``group:<adapter>``) while still available."""
    if target and ":" in target:
        kind, adapter = target.split(":", 1)
        if kind in ("user", "group") and is_available(adapter):
            return Route(kind=kind, adapter=adapter, target=target, reason="the original's target")  # type: ignore[typeddict-item]
    return Route(kind="base", adapter=None, target="base", reason="regenerated on the base model")


async def restore_prompt(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Put back the original's prompt and target, and clear the per-turn fields."""
    regeneration = state.regenerate
    assert regeneration is not None
    backend = runtime.context.services.backend
    prompt = regeneration["prompt"]
    return {
        "scratch": [RemoveMessage(id=REMOVE_ALL_MESSAGES)],
        "tool_rounds": 0,
        "reply": "",
        "usage": None,
        "profile_updates": [],
        "experiments": [],  # a regeneration is not a turn of an experiment's arm
        "degraded": [],
        "arm": {},
        "memories": [],  # quoted inside the stored prompt; not recalled again
        "prompt_version": regeneration["prompt_version"],
        "system_prompt": next((m["content"] for m in prompt if m["role"] == "system"), ""),
        "prompt_messages": prompt,
        "prompt_tokens_estimate": sum(backend.count_tokens(m["content"]) for m in prompt),
        "route": await asyncio.to_thread(route_of, regeneration["target"], backend.has_adapter),
    }


def thread_update(state: TurnState) -> dict[str, Any]:
    """The thread's state after recording a regeneration.

    ``generate`` appended the alternative to the thread's messages; it stays there, in
    the original's place, only when the original was the thread's last word. The stored
    prompt is dropped from the state: the turn is recorded.
    """
    regeneration = state.regenerate
    assert regeneration is not None
    ids = [m.id for m in state.messages]
    replaced = len(ids) >= 2 and ids[-2] == regeneration["original_id"]
    doomed = regeneration["original_id"] if replaced else state.assistant_turn_id
    return {"messages": [RemoveMessage(id=doomed)], "regenerate": None}
