"""What the user has told about themselves: their current facts and preferences.

A preference stated once ("I'm vegetarian") matters to questions that share no word with
it ("what should I cook tonight?"), so search alone cannot be relied on to bring it back.
The user's current semantic memories are few and short, so the prompt shows them as a
block beside what search found: the ones most relevant to the message first (searched
among facts and preferences only, so recalled turns do not crowd them out), then the newest.
Dated events ("The user went to a support group yesterday (2023-05-07).") are episodes, not
standing facts: they stay out of this block and are found by search when a question needs
them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from memory.views import MemoryView

KNOWN_KINDS = ("preference", "fact")
_DATED = re.compile(r"\((?:around\s+)?\d{4}(?:-\d{2}){0,2}\)")
"""A date the extraction resolved and wrote into the text: the statement is an event."""


class MemoryLister(Protocol):
    """The part of the memory service this needs."""

    def search(
        self, user_id: str, query: str, *, k: int = 10, kinds: Sequence[str] | None = None
    ) -> list[MemoryView]:
        """The user's memories most relevant to ``query``, best first."""
        ...

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


def known_about(
    memory: MemoryLister, user_id: str, query: str, *, relevant: int = 12, limit: int = 40
) -> list[MemoryView]:
    """The user's current preferences and facts, ``limit`` in all.

    The ``relevant`` ones most relevant to ``query`` come first, then the newest.
    """
    ranked = memory.search(user_id, query, k=relevant, kinds=KNOWN_KINDS)
    newest: list[MemoryView] = []
    for kind in KNOWN_KINDS:
        views, _ = memory.list(user_id, kind=kind, include_invalid=False, limit=limit)
        newest.extend(views)
    newest.sort(key=lambda v: v.created_at, reverse=True)
    return [v for v in merge_known(ranked, newest) if standing(v)][:limit]


def standing(view: MemoryView) -> bool:
    """Whether ``view`` states something standing rather than a dated event."""
    return not _DATED.search(view.text)


def merge_known(searched: Sequence[MemoryView], known: Sequence[MemoryView]) -> list[MemoryView]:
    """``searched`` in its order, then the ``known`` memories it does not already hold."""
    seen = {v.id for v in searched}
    return [*searched, *(v for v in known if v.id not in seen)]
