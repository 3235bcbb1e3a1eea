"""Export of everything held about a user, and deletion of single turns."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from memory import derived
from memory.persona import procedural
from memory.persona import profile as profiles
from memory.records.tables import (
    Feedback,
    Profile,
    ProfileChange,
    ProfileVersion,
    Thread,
    Turn,
    User,
)
from memory.service import MemoryService


def _dump(row: Any) -> dict[str, Any]:
    return dict(row.model_dump(mode="json"))


def export_user(engine: Engine, memory: MemoryService, user_id: str) -> dict[str, Any]:
    """The user's records, memories (with sources and validity), profile and feedback."""
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
        out: dict[str, Any] = {
            "user": _dump(user),
            "threads": [_dump(t) for t in threads],
            "turns": [_dump(t) for t in turns],
            "feedback": [_dump(f) for f in feedback],
            "profile": _dump(profile) if profile else None,
            "profile_history": [_dump(c) for c in changes],
            "profile_versions": [_dump(v) for v in versions],
            "instruction_blocks": [_dump(b) for b in blocks],
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
        session.exec(delete(Turn).where(col(Turn.id) == turn_id))
        session.commit()
    return thread_id
