"""One row per exposed turn of an experiment, with what happened to it after.

The rows feed the per-arm statistics (``evals.experiment_stats``): each says which arm and
user, whether the turn failed, its timings and tokens, and what the user did next: voted,
edited the reply, asked for it again, or went on talking in the thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.records.experiments import ExperimentExposure
from memory.records.tables import Feedback, Turn

CHUNK = 500
"""Ids per ``IN (…)`` query."""


@dataclass(frozen=True)
class ExposedTurn:
    """An exposed turn and its outcome. Timings are ``None`` for a failed or running turn."""

    arm: str
    user_id: str
    failed: bool
    recorded: bool
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens: int = 0
    """Completion tokens."""
    thumbs_up: bool = False
    thumbs_down: bool = False
    edited: bool = False
    regenerated: bool = False
    followed_up: bool = False


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def exposed_turns(engine: Engine, experiment_id: str) -> list[ExposedTurn]:
    """Every exposure of the experiment, with its turn's outcome."""
    with Session(engine) as session:
        exposures = session.exec(
            select(ExperimentExposure).where(ExperimentExposure.experiment_id == experiment_id)
        ).all()
        ids = [e.turn_id for e in exposures]
        turns: dict[str, Turn] = {}
        votes: dict[str, set[str]] = defaultdict(set)
        for part in _chunks(ids):
            turns.update(
                (t.id, t) for t in session.exec(select(Turn).where(col(Turn.id).in_(part))).all()
            )
            for fb in session.exec(select(Feedback).where(col(Feedback.turn_id).in_(part))).all():
                votes[fb.turn_id].add(fb.rating)
                if fb.edited_text:
                    votes[fb.turn_id].add("edited")
        later = _later_activity(session, list(turns.values()))
    rows = []
    for e in exposures:
        turn = turns.get(e.turn_id)
        if turn is None:
            rows.append(ExposedTurn(e.arm, e.user_id, failed=e.status == "error", recorded=False))
            continue
        regenerated, followed_up = later.get(turn.id, (False, False))
        rows.append(
            ExposedTurn(
                arm=e.arm,
                user_id=e.user_id,
                failed=e.status == "error",
                recorded=True,
                ttft_ms=turn.ttft_ms,
                latency_ms=turn.latency_ms,
                tokens=turn.completion_tokens or 0,
                thumbs_up="up" in votes[turn.id],
                thumbs_down="down" in votes[turn.id],
                edited="edited" in votes[turn.id],
                regenerated=regenerated,
                followed_up=followed_up,
            )
        )
    return rows


def _later_activity(session: Session, turns: Sequence[Turn]) -> dict[str, tuple[bool, bool]]:
    """Turn id → (another reply to the same message came later, the user wrote again)."""
    threads = sorted({t.thread_id for t in turns})
    replies: dict[str, list[datetime]] = defaultdict(list)  # user turn id → reply times
    user_times: dict[str, list[datetime]] = defaultdict(list)  # thread → user message times
    for part in _chunks(threads):
        rows = session.exec(
            select(Turn.thread_id, Turn.role, Turn.reply_to_id, Turn.created_at).where(
                col(Turn.thread_id).in_(part)
            )
        ).all()
        for thread_id, role, reply_to, created in rows:
            if role == "assistant" and reply_to:
                replies[reply_to].append(created)
            elif role == "user":
                user_times[thread_id].append(created)
    out = {}
    for t in turns:
        regenerated = any(c > t.created_at for c in replies.get(t.reply_to_id or "", []))
        followed = any(c > t.created_at for c in user_times.get(t.thread_id, []))
        out[t.id] = (regenerated, followed)
    return out
