"""Bulk import of past sessions, idempotent by the client's ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.records.repo import title_of
from memory.records.tables import Thread, Turn


@dataclass(frozen=True)
class ImportTurn:
    """A turn of an imported session."""

    id: str
    role: str
    content: str
    speaker: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ImportSession:
    """An imported session: its id, start and turns in order."""

    id: str
    started_at: datetime
    turns: Sequence[ImportTurn]


@dataclass
class ImportResult:
    """What an import did."""

    sessions: int = 0
    threads_created: int = 0
    turns_imported: int = 0
    turns_skipped: int = 0
    thread_ids: dict[str, str] = field(default_factory=dict)
    """Session id → thread id."""
    new_turns: list[Turn] = field(default_factory=list)


def import_history(
    engine: Engine, *, user_id: str, sessions: Sequence[ImportSession]
) -> ImportResult:
    """Write the sessions' threads and turns; turns whose ids exist already are skipped.

    Turns without ``created_at`` are placed one second apart from the session's start, and
    consecutive turns given the same ``created_at`` one microsecond apart, so their order
    survives (search reads a turn's neighbours by it). Everything is written in one transaction.
    """
    result = ImportResult(sessions=len(sessions))
    external_ids = [t.id for s in sessions for t in s.turns]
    with Session(engine, expire_on_commit=False) as session:
        known = (
            set(
                session.exec(
                    select(Turn.external_id).where(
                        Turn.user_id == user_id, col(Turn.external_id).in_(external_ids)
                    )
                ).all()
            )
            if external_ids
            else set()
        )
        threads = {
            t.external_id: t
            for t in session.exec(
                select(Thread).where(
                    Thread.user_id == user_id,
                    col(Thread.external_id).in_([s.id for s in sessions]),
                )
            ).all()
        }
        for s in sessions:
            thread = threads.get(s.id)
            if thread is None:
                first_user = next((t.content for t in s.turns if t.role == "user"), "")
                thread = Thread(
                    user_id=user_id,
                    external_id=s.id,
                    title=title_of(first_user),
                    created_at=s.started_at,
                    updated_at=s.started_at,
                )
                session.add(thread)
                result.threads_created += 1
            result.thread_ids[s.id] = thread.id
            previous: tuple[datetime, datetime] | None = None  # (as given, as stored)
            for i, t in enumerate(s.turns):
                if t.id in known:
                    result.turns_skipped += 1
                    continue
                when = t.created_at or s.started_at + timedelta(seconds=i)
                if previous is not None and when == previous[0]:
                    # Turns given one timestamp (a session's date) keep their order.
                    stored = previous[1] + timedelta(microseconds=1)
                else:
                    stored = when
                previous = (when, stored)
                turn = Turn(
                    user_id=user_id,
                    thread_id=thread.id,
                    role=t.role,
                    speaker=t.speaker,
                    content=t.content,
                    external_id=t.id,
                    created_at=stored,
                )
                result.new_turns.append(turn)
                thread.updated_at = max(thread.updated_at, turn.created_at)
        session.flush()
        session.add_all(result.new_turns)
        session.commit()
    result.turns_imported = len(result.new_turns)
    return result
