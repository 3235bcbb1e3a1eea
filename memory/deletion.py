"""Deletion cascades: a turn or a user, and everything derived from them.

Run by a background job (``workers``); every step is idempotent, so a cascade interrupted
by a crash and run again finishes the work. What goes:

* a turn: preference pairs and stored prompts built from it, then (``export.delete_turn``)
  memories with the turn as a source (rows, vectors, terms), what it caused in the profile,
  its feedback, the turn; then the memories next to it are re-indexed (their keys quoted
  it) and memories sourced from it swept once more (a distill that overlapped);
* a user: pairs and stored prompts, vectors and terms, then (``repo.delete_user``) every
  record, vectors once more (deferred indexing that overlapped), the user's other jobs.

Everything else derived from the data (training snapshots, adapter weights, ...) is
reached through the :class:`DerivedDataPurger` objects a :class:`Deletion` is built with:
the composition root (``wiring.services.build_deletion``) builds one for every entry point
alike, so no entry point can forget a step. Each purger gets ``(user_id, turn_ids)`` —
``turn_ids`` ``None`` for a whole user. For a turn they run after the turn is gone; for a
user, first, while the user's turns still name what was built from them. ``finishers``
(``memory.scrub.StorageScrubber``: what deleted rows leave in SQLite files) run last in
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory import pairs
from memory.export import delete_turn
from memory.records import jobs, repo
from memory.records.tables import ApiKey, Memory, MemorySource, Turn, utcnow
from memory.service import MemoryService


class DerivedDataPurger(Protocol):
    """Deletes what another package derived from a user's data (memory cannot import it)."""

    def purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        """Remove what was derived from the turns (``None``: all of the user's data).

        Must be idempotent. Returns how many serving adapters it retired (for the report).
        """
        ...


@dataclass(frozen=True)
class Deletion:
    """The deletion cascades of one deployment, built once at the composition root.

    Attributes:
        engine: The record store.
        memory: The memory service (rows, vectors, full-text terms).
        purgers: What other packages derived from the data, in the order to run them.
    """

    engine: Engine
    memory: MemoryService
    purgers: Sequence[DerivedDataPurger] = ()
    finishers: Sequence[DerivedDataPurger] = ()
    """Run last in both cascades, after every row is gone (``memory.scrub``: what deleted
    rows leave in files below the row level)."""

    def _purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        return sum(p.purge(user_id, turn_ids) for p in self.purgers)

    def _finish(self, user_id: str, turn_ids: Sequence[str] | None) -> None:
        for finisher in self.finishers:
            finisher.purge(user_id, turn_ids)

    def turn(self, *, user_id: str, turn_id: str) -> dict[str, Any]:
        """Delete one of the user's turns and everything derived from it; what was removed.

        A reply to the turn stays (it is a turn of its own); pairs comparing replies to it
        go, since their prompt is gone. The API removes the turn from the thread's latest
        state before it enqueues this, so the next turn no longer sees it; every checkpoint
        is rewritten here (``graph.thread_purge.ThreadStatePurger``, one of the purgers).
        """
        with Session(self.engine) as session:
            removed_pairs = pairs.delete_for_turns(session, user_id=user_id, turn_ids=[turn_id])
            session.commit()
            neighbours = neighbour_memories(session, user_id=user_id, turn_id=turn_id)
        thread_id = delete_turn(self.engine, self.memory, user_id, turn_id)
        # Their index keys quoted the turn (``memory.retrieval``: a turn's neighbours).
        self.memory.reindex(user_id, neighbours)
        # A distill job that read the turn before it went may have written since; what it
        # wrote before the turn's row went is found now, what it writes after it removes
        # itself (``workers.handlers.distill`` re-runs this cascade).
        self.memory.delete_for_turns(user_id, [turn_id])
        out = {
            "turn_deleted": thread_id is not None,
            "preference_pairs": removed_pairs,
            "adapters_marked": self._purge(user_id, [turn_id]),
        }
        self._finish(user_id, [turn_id])
        return out

    def user(self, *, user_id: str, keep_job_ids: Sequence[str] = ()) -> dict[str, Any]:
        """Delete a user and everything held about them; what was removed.

        The API drops the user's thread state before it enqueues this; the purgers drop
        it again here (a turn may have been running meanwhile).
        ``keep_job_ids``: jobs to leave (the one running this cascade, so it can finish).
        """
        out: dict[str, Any] = {"adapters_marked": self._purge(user_id, None)}
        self.memory.delete_user(user_id)  # vectors and terms; rows go with the records below
        with Session(self.engine) as session:
            out["preference_pairs"] = pairs.delete_for_user(session, user_id=user_id)
            out["threads"] = len(repo.delete_user(session, user_id=user_id))
            session.commit()
        # Again once the rows are gone: deferred indexing that read them before may have
        # recreated the collection (it re-checks after writing; one of the two is last).
        self.memory.delete_user(user_id)
        out["jobs"] = jobs.delete_for_user(self.engine, user_id, keep=keep_job_ids)
        self._finish(user_id, None)
        return out


def neighbour_memories(session: Session, *, user_id: str, turn_id: str) -> list[str]:
    """The episodic memories of the turns next to ``turn_id`` in its thread.

    An episodic memory's index key may quote the turns before and after its own; those
    are re-indexed once the turn is gone. Turns that share its timestamp count as next.
    """
    turn = session.get(Turn, turn_id)
    if turn is None or turn.user_id != user_id:
        return []
    others = session.exec(
        select(Turn.id, Turn.created_at).where(Turn.thread_id == turn.thread_id, Turn.id != turn_id)
    ).all()
    earlier = [t for t in others if t[1] < turn.created_at]
    later = [t for t in others if t[1] > turn.created_at]
    near = {i for i, at in others if at == turn.created_at}
    if earlier:
        near.add(max(earlier, key=lambda t: t[1])[0])
    if later:
        near.add(min(later, key=lambda t: t[1])[0])
    if not near:
        return []
    return list(
        session.exec(
            select(MemorySource.memory_id)
            .join(Memory, col(Memory.id) == col(MemorySource.memory_id))
            .where(col(MemorySource.turn_id).in_(sorted(near)), Memory.kind == "episodic")
        )
    )


def revoke_keys(session: Session, *, user_id: str) -> int:
    """Revoke the user's API keys now (the cascade deletes them); return how many."""
    keys = session.exec(
        select(ApiKey).where(ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
    ).all()
    now = utcnow()
    for key in keys:
        key.revoked_at = now
        session.add(key)
    return len(keys)
