"""Memory tools the model may call inside a turn: search, remember, forget.

``runtime`` is injected by LangGraph and hidden from the model, so the docstrings (which
the model reads) do not list it (hence the D417 waivers).

The user is never a parameter the model sees or fills: each tool reads the user id from
the run's context (``runtime.context.user_id``), which the API set from the bearer key.
A model that asks for another user's data has no way to name them. What ``remember``
writes names the turn of the run as its source, so deleting that turn deletes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, cast

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime

from memory.service import NewMemory, SourceRef


class _Memory(Protocol):
    def search(self, user_id: str, query: str, *, k: int = ...) -> Sequence[Any]: ...

    def add(self, user_id: str, items: Sequence[Any]) -> Sequence[Any]: ...

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> int: ...


def _memory(runtime: ToolRuntime) -> tuple[str, _Memory]:
    ctx: Any = runtime.context
    return str(ctx.user_id), cast(_Memory, ctx.services.memory)


@tool
def search_memory(query: str, runtime: ToolRuntime, k: int = 5) -> str:  # noqa: D417
    """Search what you remember about the user (facts, preferences, past conversations).

    Args:
        query: What to look for, in plain words.
        k: How many memories to return (1-20).
    """
    user_id, memory = _memory(runtime)
    found = memory.search(user_id, query, k=max(1, min(int(k), 20)))
    return json.dumps(
        [
            {"id": m.id, "kind": m.kind, "text": m.text, "date": m.valid_from.date().isoformat()}
            for m in found
        ]
    )


@tool
def remember(text: str, runtime: ToolRuntime, kind: str = "fact") -> str:  # noqa: D417
    """Remember something about the user for future conversations.

    Args:
        text: A short statement about the user, e.g. "The user is allergic to peanuts."
        kind: One of fact, preference, instruction.
    """
    if kind not in ("fact", "preference", "instruction"):
        return "error: kind must be fact, preference or instruction"
    if not text.strip() or len(text) > 2000:
        return "error: text must be 1-2000 characters"
    user_id, memory = _memory(runtime)
    # The memory comes from this turn's message: deleting that turn must reach it.
    turn_id = _state_value(runtime, "user_turn_id")
    written = memory.add(
        user_id,
        [
            NewMemory(
                kind=kind,
                text=text.strip(),
                speaker="assistant",
                sources=(SourceRef(turn_id=turn_id),) if turn_id else (),
                thread_id=getattr(runtime.context, "thread_id", None),
            )
        ],
    )
    return f"remembered ({written[0].id})"


def _state_value(runtime: ToolRuntime, key: str) -> str | None:
    """A field of the graph's state (a dataclass, or a dict when run outside the graph)."""
    state: Any = runtime.state
    value = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    return str(value) if value else None


@tool
def forget(memory_id: str, runtime: ToolRuntime) -> str:  # noqa: D417
    """Forget one memory about the user, by the id search_memory returned.

    Args:
        memory_id: The memory's id, such as mem_3f2a….
    """
    user_id, memory = _memory(runtime)
    removed = memory.delete(user_id, [memory_id])
    return "forgotten" if removed else f"error: no memory {memory_id}"


MEMORY_TOOLS: tuple[BaseTool, ...] = (search_memory, remember, forget)
