"""What the user has told about themselves: their current facts and preferences.

A preference stated once ("I'm vegetarian") matters to questions that share no word with
it ("what should I cook tonight?"), so search alone cannot be relied on to bring it back.
The user's current semantic memories are few and short, so the prompt shows them as a
block beside what search found: those search ranked first, then the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from memory.views import MemoryView

KNOWN_KINDS = ("preference", "fact")


class MemoryLister(Protocol):
    """The part of the memory service this needs."""

    def list(
        self,
        user_id: str,
        *,
        kind: str | None = None,
        include_invalid: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[MemoryView], int]:
        """A page of the user's memories, newest first, and the total count."""
        ...


def known_about(memory: MemoryLister, user_id: str, *, limit: int = 40) -> list[MemoryView]:
    """The user's current (not superseded) preferences and facts, newest first."""
    found: list[MemoryView] = []
    for kind in KNOWN_KINDS:
        views, _ = memory.list(user_id, kind=kind, include_invalid=False, limit=limit)
        found.extend(views)
    return sorted(found, key=lambda v: v.created_at, reverse=True)[:limit]


def merge_known(searched: Sequence[MemoryView], known: Sequence[MemoryView]) -> list[MemoryView]:
    """``searched`` in its order, then the ``known`` memories it does not already hold."""
    seen = {v.id for v in searched}
    return [*searched, *(v for v in known if v.id not in seen)]
