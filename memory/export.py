"""Export of everything held about a user, and deletion of single turns.

The export is documented as everything held, so it has a section for every store that
holds the user's text or what was derived from it. The memory side is here: records,
memories with sources, profile and its history, learned instruction blocks, stored
prompts (with the turns they hold) and preference pairs. What other packages hold
(training samples, dataset snapshots, adapters) comes from :class:`ExportSection` objects
that the composition root (``wiring.services``) hands to :class:`UserExport`, as it hands
purgers to ``memory.deletion.Deletion``; thread state lives with the graph's checkpointer
and the API adds it (``graph.thread_export``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from memory import derived
from memory.pairs import PreferencePair, TurnPrompt
from memory.persona import procedural
from memory.persona import profile as profiles
from memory.records import experiments
from memory.records.tables import (
    Feedback,
    IdempotentRequest,
    Profile,
    ProfileChange,
    ProfileVersion,
    Thread,
    Turn,
    User,
)
from memory.service import MemoryService


class ExportSection(Protocol):
    """What another package holds about a user, for the export (memory cannot import it)."""

    def export(self, user_id: str) -> dict[str, Any]:
        """Top-level export keys → JSON-ready values; only the user's own data."""
        ...


@dataclass(frozen=True)
class UserExport:
    """The export of one deployment, built once at the composition root.

    Attributes:
        engine: The record store.
        memory: The memory service.
        sections: What other packages hold (training data, adapters, ...).
    """

    engine: Engine
    memory: MemoryService
    sections: Sequence[ExportSection] = ()

    def user(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user, as JSON (see :func:`export_user`).

        Raises:
            LookupError: No such user.
        """
        out = export_user(self.engine, self.memory, user_id)
        for section in self.sections:
            out.update(section.export(user_id))
        return out


def _dump(row: Any) -> dict[str, Any]:
    return dict(row.model_dump(mode="json"))


def export_user(engine: Engine, memory: MemoryService, user_id: str) -> dict[str, Any]:
    """The user's records, memories, profile, feedback, stored prompts and pairs.

    Memories come with their sources and validity, the profile with its change log and
    versions, stored prompts with the turns whose text they hold, pairs with theirs.

    Raises:
        LookupError: No such user.
    """
    with Session(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise LookupError(user_id)
        threads = session.exec(
            select(Thread).where(Thread.user_id == user_id).order_by(col(Thread.created_at))
        ).all()
        turns = session.exec(
            select(Turn).where(Turn.user_id == user_id).order_by(col(Turn.created_at))
        ).all()
        feedback = session.exec(select(Feedback).where(Feedback.user_id == user_id)).all()
        profile = session.get(Profile, user_id)
        changes = session.exec(
            select(ProfileChange)
            .where(ProfileChange.user_id == user_id)
            .order_by(col(ProfileChange.created_at))
        ).all()
        versions = session.exec(
            select(ProfileVersion)
            .where(ProfileVersion.user_id == user_id)
            .order_by(col(ProfileVersion.version))
        ).all()
        blocks = procedural.list_blocks(session, user_id=user_id)
        prompts = session.exec(
            select(TurnPrompt)
            .where(TurnPrompt.user_id == user_id)
            .order_by(col(TurnPrompt.created_at), col(TurnPrompt.turn_id))
        ).all()
        stored_pairs = session.exec(
            select(PreferencePair)
            .where(PreferencePair.user_id == user_id)
            .order_by(col(PreferencePair.created_at), col(PreferencePair.id))
        ).all()
        out: dict[str, Any] = {
            "user": _dump(user),
            "threads": [_dump(t) for t in threads],
            "turns": [_dump(t) for t in turns],
            "feedback": [_dump(f) for f in feedback],
            "profile": _dump(profile) if profile else None,
            "profile_history": [_dump(c) for c in changes],
            "profile_versions": [_dump(v) for v in versions],
            "instruction_blocks": [_dump(b) for b in blocks],
            "stored_prompts": [_dump(p) for p in prompts],
            "preference_pairs": [_dump(p) for p in stored_pairs],
        }
    memories: list[dict[str, Any]] = []
    offset = 0
    while True:
        page, total = memory.list(user_id, limit=500, offset=offset)
        memories.extend(v.as_dict() for v in page)
        offset += len(page)
        if not page or offset >= total:
            break
    out["memories"] = memories
    return out


def delete_turn(engine: Engine, memory: MemoryService, user_id: str, turn_id: str) -> str | None:
    """Delete one of the user's turns, its feedback and everything derived from it.

    Memories with the turn as a source, what it caused in the profile (``forget_turns``),
    the style and interests recomputed without it (``forget_derived``), a thread title and
    learned instruction blocks derived from it (``memory.derived``).

    Returns the turn's thread id (so the caller can drop it from thread state), or ``None``
    when the user has no such turn.
    """
    with Session(engine) as session:
        turn = session.get(Turn, turn_id)
        if turn is None or turn.user_id != user_id:
            return None
        thread_id = turn.thread_id
    memory.delete_for_turns(user_id, [turn_id])
    with Session(engine) as session:
        profiles.forget_turns(session, user_id=user_id, turn_ids=[turn_id])
        # Text derived from the turn without naming it: found while the turn still exists.
        profiles.forget_derived(session, user_id=user_id, turn_ids=[turn_id])
        derived.retitle_threads(session, user_id=user_id, turn_ids=[turn_id])
        derived.forget_feedback_blocks(session, user_id=user_id, turn_ids=[turn_id])
        session.exec(delete(Feedback).where(col(Feedback.turn_id) == turn_id))
        session.exec(
            delete(IdempotentRequest).where(
                (col(IdempotentRequest.turn_id) == turn_id)
                | (col(IdempotentRequest.user_turn_id) == turn_id)
            )
        )
        experiments.delete_for_turns(session, [turn_id])
        session.exec(delete(Turn).where(col(Turn.id) == turn_id))
        session.commit()
    return thread_id
