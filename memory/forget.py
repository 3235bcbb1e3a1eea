"""Forgetting on request: "forget that I live in Paris" removes the memories that say so.

Matching is deliberately strict: a memory is forgotten only when most of the request's
content words are in it, so "forget that I have a dog" does not take "I have a cat" with
it. Semantic memories and the episodic copies of turns are deleted from every index; the
turns themselves stay in the thread's transcript (delete a turn to remove it).
"""

from __future__ import annotations

from typing import Protocol

from memory.service import MemoryView
from memory.words import content_words

MIN_OVERLAP = 0.75


class Searchable(Protocol):
    """What forgetting needs of the memory service."""

    def search(self, user_id: str, query: str, *, k: int = 10) -> list[MemoryView]:
        """The user's memories most relevant to ``query``."""
        ...

    def delete(self, user_id: str, memory_ids: list[str]) -> int:
        """Delete memories from every store; return how many."""
        ...


def matching(what: str, candidates: list[MemoryView]) -> list[MemoryView]:
    """The ``candidates`` that say ``what`` (most of its content words present)."""
    wanted = content_words(what)
    if not wanted:
        return []
    return [
        m for m in candidates if len(wanted & content_words(m.text)) / len(wanted) >= MIN_OVERLAP
    ]


def forget(memory: Searchable, user_id: str, what: str, *, k: int = 20) -> list[str]:
    """Delete the user's memories that say ``what``; return their ids."""
    found = matching(what, memory.search(user_id, what, k=k))
    ids = [m.id for m in found]
    if ids:
        memory.delete(user_id, ids)
    return ids
