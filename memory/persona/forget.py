"""Forgetting on request: "forget that I live in Paris" removes the memories that say so.

Matching is deliberately strict: a memory is forgotten only when most of the request's
content words are in it, so "forget that I have a dog" does not take "I have a cat" with
it. Semantic memories and the episodic copies of turns are deleted from every index; the
turns themselves stay in the thread's transcript (delete a turn to remove it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from memory.persona.instructions import ProfileUpdate
from memory.persona.words import content_words
from memory.records.tables import Memory
from memory.service import MemoryView

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


SLOTS = {
    "preferred_name": "preferred_name",
    "language": "response_language",
    "verbosity": "response_length",
    "formatting.emoji": "emoji",
    "formality": "formality",
}
"""Profile field → the slot of the instruction memories that say the same thing."""


def retire_revoked(
    session: Session,
    *,
    user_id: str,
    updates: Sequence[ProfileUpdate],
    before: dict[str, Any],
    now: datetime,
) -> list[str]:
    """Mark the instruction memories that revoked preferences contradict as no longer valid.

    "You can stop calling me Captain" unsets the name; the distilled memory "the user wants
    to be called Captain" gets ``invalid_at`` (it stays in history). Matched by the field's
    slot, or, for a tone or a free-form rule, by most of its content words.
    """
    retired: list[str] = []
    for update in updates:
        if update.op not in ("unset", "remove"):
            continue
        query = select(Memory).where(
            Memory.user_id == user_id,
            Memory.kind == "instruction",
            col(Memory.invalid_at).is_(None),
        )
        slot = SLOTS.get(update.field)
        if slot is not None:
            rows = list(session.exec(query.where(Memory.slot == slot)))
        else:
            said = before.get("tone") if update.field == "tone" else update.value
            words = content_words(str(said or "")) - {"like", "talk", "answer"}
            rows = [
                m
                for m in session.exec(query)
                if words and len(words & content_words(m.text)) / len(words) >= MIN_OVERLAP
            ]
        for row in rows:
            row.invalid_at = now
            session.add(row)
            retired.append(row.id)
    session.flush()
    return retired
