"""Deletion cascades: a turn or a user, and everything derived from them.

Run by a background job (``workers``); every step is idempotent, so a cascade interrupted
by a crash and run again finishes the work. What goes:

* a turn: preference pairs and stored prompts built from it, then (``export.delete_turn``)
  memories with the turn as a source (rows, vectors, terms), what it caused in the profile,
  its feedback, the turn;
* a user: pairs and stored prompts, vectors and terms, then (``repo.delete_user``) every
  record, then the user's other jobs.

Training data and adapters derived from deleted data go through
``ADAPTER_RETIREMENT_HOOKS``: the adapters package appends a function there (memory must
not import it); each gets ``(engine, user_id, turn_ids)`` — ``turn_ids`` ``None`` for a
whole user — and returns how many adapters it marked. The adapters hook deletes the
dataset snapshots built from the data (blobs and rows), retires the adapters trained on
them and removes their weights, and for a user deletes their own snapshots, adapters and
samples (``adapters.deletion``). For a turn it runs after the turn is gone; for a user,
first, while their turns still name what was built from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory import pairs
from memory.export import delete_turn
from memory.records import jobs, repo
from memory.records.tables import ApiKey, utcnow
from memory.service import MemoryService

AdapterRetirementHook = Callable[[Engine, str, Sequence[str] | None], int]
"""``(engine, user_id, turn_ids or None for the whole user) -> adapters marked``."""

ADAPTER_RETIREMENT_HOOKS: list[AdapterRetirementHook] = []
"""Called by every cascade; the Training issue's adapter registry appends its hook."""


def retire_adapters(engine: Engine, user_id: str, turn_ids: Sequence[str] | None) -> int:
    """Run every adapter retirement hook; return how many adapters they marked."""
    return sum(hook(engine, user_id, turn_ids) for hook in ADAPTER_RETIREMENT_HOOKS)


def delete_turn_cascade(
    engine: Engine, memory: MemoryService, *, user_id: str, turn_id: str
) -> dict[str, Any]:
    """Delete one of the user's turns and everything derived from it; what was removed.

    A reply to the turn stays (it is a turn of its own); pairs comparing replies to it go,
    since their prompt is gone. Thread state is the caller's (the API removes the turn
    from it before it enqueues this).
    """
    with Session(engine) as session:
        removed_pairs = pairs.delete_for_turns(session, user_id=user_id, turn_ids=[turn_id])
        session.commit()
    thread_id = delete_turn(engine, memory, user_id, turn_id)
    return {
        "turn_deleted": thread_id is not None,
        "preference_pairs": removed_pairs,
        "adapters_marked": retire_adapters(engine, user_id, [turn_id]),
    }


def delete_user_cascade(
    engine: Engine, memory: MemoryService, *, user_id: str, keep_job_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """Delete a user and everything held about them; what was removed.

    Thread state is the caller's (the API removes it before it enqueues this).
    ``keep_job_ids``: jobs to leave (the one running this cascade, so it can finish).
    """
    out: dict[str, Any] = {"adapters_marked": retire_adapters(engine, user_id, None)}
    memory.delete_user(user_id)  # vectors and terms; their rows go with the records below
    with Session(engine) as session:
        out["preference_pairs"] = pairs.delete_for_user(session, user_id=user_id)
        out["threads"] = len(repo.delete_user(session, user_id=user_id))
        session.commit()
    out["jobs"] = jobs.delete_for_user(engine, user_id, keep=keep_job_ids)
    return out


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
