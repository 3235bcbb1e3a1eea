"""The jobs the API asks for, with their idempotency keys. Blocking: call from a thread."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlmodel import Session

from graph.context import AfterTurn
from memory import pairs
from memory.records.jobs import Job
from memory.records.tables import Turn
from memory.service import distillable
from workers.queue import JobQueue


def after_turn(queue: JobQueue) -> AfterTurn:
    """The graph's ``after_turn`` hook: keep the prompt as sent, enqueue distillation."""

    def hook(
        user_turn: Turn,
        assistant_turn: Turn,
        prompt: Sequence[dict[str, str]],
        /,
        memory_ids: Sequence[str] = (),
        history_ids: Sequence[str] | None = None,
    ) -> None:
        with Session(queue.engine) as session:
            pairs.store_prompt(
                session,
                turn_id=assistant_turn.id,
                user_id=assistant_turn.user_id,
                messages=prompt,
                memory_ids=memory_ids,
                history_ids=history_ids,
            )
            session.commit()
        distill(queue, [user_turn])

    return hook


def distill(queue: JobQueue, turns: Sequence[Turn]) -> Job | None:
    """Distill ``turns`` (one user's) in one job; ``None`` when there is nothing to do."""
    ids = sorted(t.id for t in turns if distillable(t))
    if not ids:
        return None
    key = f"distill:{ids[0]}" if len(ids) == 1 else f"distill:{_digest(ids)}"
    return queue.submit("distill", key=key, payload={"turn_ids": ids}, user_id=turns[0].user_id)


def build_pairs(queue: JobQueue, *, user_id: str, turn_id: str, feedback_id: str) -> Job:
    """Rebuild the pairs of the prompt ``turn_id`` answers, after feedback ``feedback_id``."""
    return queue.submit(
        "pairs",
        key=f"pairs:{feedback_id}",
        payload={"user_id": user_id, "turn_id": turn_id},
        user_id=user_id,
    )


def delete_turn(queue: JobQueue, *, user_id: str, turn_id: str) -> Job:
    """The deletion cascade of a turn."""
    return queue.submit(
        "delete_turn",
        key=f"delete_turn:{turn_id}",
        payload={"user_id": user_id, "turn_id": turn_id},
        user_id=user_id,
    )


def delete_user(queue: JobQueue, *, user_id: str) -> Job:
    """The deletion cascade of a user."""
    return queue.submit(
        "delete_user", key=f"delete_user:{user_id}", payload={"user_id": user_id}, user_id=user_id
    )


def _digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
