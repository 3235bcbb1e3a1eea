"""Composing what is sent to the model (pure): system prompt, memories, history, budgets.

Priority when the budget is tight, highest first: the new user message, standing
instructions and the preferred name (never cut), memories (best first, up to the memory
budget), then thread history (newest first, up to the history budget).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graph.prompts import MemoryVar, PromptLibrary, SystemPromptVars
from graph.state import MemoryItem

SYSTEM_PROMPT = "system"


@dataclass(frozen=True)
class Composed:
    """The messages to send and what went into them."""

    system_prompt: str
    messages: list[dict[str, str]]
    memories: list[MemoryItem]
    prompt_tokens: int


class PromptTooLongError(ValueError):
    """The new message alone does not fit the model's context with the requested reply."""


def compose(
    *,
    prompts: PromptLibrary,
    version: str,
    today: datetime,
    profile: dict[str, Any],
    memories: Sequence[MemoryItem],
    history: Sequence[dict[str, str]],
    client_system: str | None,
    count_tokens: Callable[[str], int],
    memory_budget: int,
    history_budget: int,
    context_window: int,
    max_tokens: int,
) -> Composed:
    """Build the system prompt and the message list within the token budgets.

    ``history`` is the thread in order, its last item the new user message.
    """
    kept_memories: list[MemoryItem] = []
    used = 0
    for mem in memories:
        cost = count_tokens(mem["text"]) + 8
        if used + cost > memory_budget:
            continue
        kept_memories.append(mem)
        used += cost

    variables = SystemPromptVars(
        today=today.strftime("%A %d %B %Y"),
        preferred_name=profile.get("preferred_name"),
        instructions=list(profile.get("instructions", [])),
        memories=[MemoryVar(text=m["text"], date=m["date"], role=m["role"]) for m in kept_memories],
        client_system=client_system,
    )
    system_prompt = prompts.render(SYSTEM_PROMPT, version, dict(variables))
    fixed = count_tokens(system_prompt) + 8
    if not history:
        raise ValueError("history must end with the new user message")
    newest = history[-1]
    newest_cost = count_tokens(newest["content"]) + 4
    room = context_window - max_tokens - fixed - newest_cost
    if room < 0:
        raise PromptTooLongError(
            f"the message needs {newest_cost} tokens but only {newest_cost + room} fit "
            f"beside the system prompt and max_tokens={max_tokens} in a {context_window}-token "
            "context; shorten the message or lower max_tokens"
        )
    budget = min(history_budget, room)
    kept: list[dict[str, str]] = []
    spent = 0
    for msg in reversed(history[:-1]):
        cost = count_tokens(msg["content"]) + 4
        if spent + cost > budget:
            break
        kept.append(msg)
        spent += cost
    kept.reverse()
    messages = [{"role": "system", "content": system_prompt}, *kept, newest]
    return Composed(
        system_prompt=system_prompt,
        messages=messages,
        memories=kept_memories,
        prompt_tokens=fixed + spent + newest_cost,
    )
