"""Composing what is sent to the model (pure): system prompt, memories, history, budgets.

Priority when the budget is tight, highest first:

1. the new user message;
2. the profile's directives (name, language, tone, length, formatting) and the standing
   instructions: never cut;
3. the learned instruction block (bounded in size when it is created);
4. what the user told about themselves (facts, preferences), best first, up to
   ``known_budget``; the other memories, best first, up to the memory budget (prompt
   versions without a ``known`` block get both in one list, within the memory budget);
5. style hints, then interests, up to the profile budget;
6. thread history, newest first, up to the history budget and what is left of the context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from graph.prompts import MemoryVar, PromptLibrary, SystemPromptVars
from graph.state import MemoryItem
from memory.persona.document import directives, instruction_texts
from memory.persona.known import KNOWN_KINDS
from memory.persona.style import style_hints

SYSTEM_PROMPT = "system"
T = TypeVar("T")


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
    learned: str | None = None,
    profile_budget: int = 150,
    known_budget: int = 480,
) -> Composed:
    """Build the system prompt and the message list within the token budgets.

    ``history`` is the thread in order, its last item the new user message; ``learned``
    is the user's active learned instruction block. ``known_budget`` bounds the facts
    and preferences the user stated (a block of their own, so that a preference stated once
    is not crowded out by recalled turns); ``memory_budget`` the other memories.
    """

    def line_cost(m: MemoryItem) -> int:  # the line as rendered
        return count_tokens(f"- {m['date']}, {speaker_label(m['role'])}: {m['text']}\n")

    split = "known" in prompts.variables(SYSTEM_PROMPT, version)
    known_items = [m for m in memories if split and m["kind"] in KNOWN_KINDS]
    others = [m for m in memories if not (split and m["kind"] in KNOWN_KINDS)]
    kept_known, _ = _fit(known_items, line_cost, known_budget)
    kept_others, _ = _fit(others, line_cost, memory_budget)
    kept_memories = [*kept_known, *kept_others]

    hints, spent = _fit(
        style_hints(profile.get("style", {})), lambda h: count_tokens(h) + 2, profile_budget
    )
    interests, _ = _fit(  # newest first
        list(reversed(profile.get("interests", []))),
        lambda t: count_tokens(t) + 1,
        profile_budget - spent,
    )

    variables = SystemPromptVars(
        today=today.strftime("%A %d %B %Y"),
        preferred_name=profile.get("preferred_name"),
        directives=directives(profile),
        instructions=instruction_texts(profile),
        learned=learned,
        known=[_var(m) for m in kept_known],
        memories=[_var(m) for m in kept_others],
        style_hints=hints,
        interests=interests,
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


def _var(m: MemoryItem) -> MemoryVar:
    return MemoryVar(text=m["text"], date=m["date"], role=m["role"], who=speaker_label(m["role"]))


def speaker_label(role: str) -> str:
    """Who said a recalled memory, in the prompt's words: never the user for the assistant."""
    if role == "user":
        return "the user"
    if role == "assistant":
        return "you (the assistant)"
    return role or "unknown speaker"


def _fit(items: Sequence[T], cost: Callable[[T], int], budget: int) -> tuple[list[T], int]:
    """The items, in order, that fit ``budget`` (one that does not is skipped), and their cost."""
    kept: list[T] = []
    spent = 0
    for item in items:
        c = cost(item)
        if spent + c <= budget:
            kept.append(item)
            spent += c
    return kept, spent
