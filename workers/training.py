"""Training jobs: submission (one per owner at a time), threshold triggers, retrains.

Blocking (database and broker I/O): call from a thread in async code. A training job's
key is ``train:<owner_kind>:<owner_id>:<n>``, ``n`` counting the owner's earlier training
jobs, so two submissions racing for the same owner make one job; a retrain after deletion
is keyed by the retired adapter (``…:retrain-<adapter id>``), so it is queued once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from adapters.config import TrainingSettings
from adapters.dataset_sources import owner_user_ids
from adapters.jobs import NotEnoughData, RequestedKind, data_counts, resolve_kind
from adapters.records import AdapterRecord, OwnerKind, Sample
from adapters.registry import DATA_DELETED
from memory.pairs import PreferencePair
from memory.records.jobs import Job
from memory.records.tables import Feedback, User, UserGroup
from workers.queue import JobQueue

log = logging.getLogger(__name__)

TRAIN_KINDS = ("train_sft", "train_dpo")


class TrainingBusy(RuntimeError):
    """The owner already has a training job queued or running."""

    def __init__(self, job: Job) -> None:
        """Name the job in the way."""
        super().__init__(f"training job {job.id} is already {job.status} for this owner")
        self.job = job


def _prefix(owner_kind: str, owner_id: str) -> str:
    return f"train:{owner_kind}:{owner_id}:"


def active_job(engine: Engine, *, owner_kind: str, owner_id: str) -> Job | None:
    """The owner's queued or running training job, if any."""
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(
            select(Job).where(
                col(Job.key).startswith(_prefix(owner_kind, owner_id)),
                col(Job.status).in_(["queued", "running"]),
            )
        ).first()


def submit_training(
    queue: JobQueue,
    settings: TrainingSettings,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    kind: RequestedKind = "auto",
    max_steps: int | None = None,
    reason: str = "requested",
    key_suffix: str | None = None,
) -> Job:
    """Queue a training job for the owner on the ``heavy`` queue.

    Args:
        queue: Where jobs go.
        settings: Data thresholds.
        owner_kind: ``user`` or ``group``.
        owner_id: The owner.
        kind: ``sft``, ``dpo`` or ``auto`` (DPO when there are enough pairs).
        max_steps: Overrides the number of optimizer steps.
        reason: Kept in the payload (``requested``, ``threshold``, ``data deleted`` …).
        key_suffix: A fixed key suffix (retrains); default counts earlier jobs.

    Returns:
        The queued job.

    Raises:
        TrainingBusy: A training job of this owner is queued or running.
        NotEnoughData: Too little data for ``kind``.
    """
    busy = active_job(queue.engine, owner_kind=owner_kind, owner_id=owner_id)
    if busy is not None:
        raise TrainingBusy(busy)
    with Session(queue.engine) as session:
        resolved = resolve_kind(
            data_counts(session, owner_kind=owner_kind, owner_id=owner_id), kind, settings
        )
        earlier = session.exec(
            select(func.count())
            .select_from(Job)
            .where(col(Job.key).startswith(_prefix(owner_kind, owner_id)))
        ).one()
    payload: dict[str, Any] = {"owner_kind": owner_kind, "owner_id": owner_id, "reason": reason}
    if max_steps is not None:
        payload["overrides"] = {"max_steps": max_steps}
    suffix = key_suffix if key_suffix is not None else str(int(earlier))
    return queue.submit(
        f"train_{resolved}",
        key=_prefix(owner_kind, owner_id) + suffix,
        payload=payload,
        user_id=owner_id if owner_kind == "user" else None,
    )


def _last_adapter_at(session: Session, owner_kind: str, owner_id: str) -> datetime | None:
    return session.exec(
        select(func.max(AdapterRecord.created_at)).where(
            AdapterRecord.owner_kind == owner_kind, AdapterRecord.owner_id == owner_id
        )
    ).one()


def new_data(session: Session, *, owner_kind: OwnerKind, owner_id: str) -> dict[str, int]:
    """Pairs and SFT sources (samples, up-votes, edits) added since the owner's last adapter."""
    users = owner_user_ids(session, owner_kind=owner_kind, owner_id=owner_id)
    since = _last_adapter_at(session, owner_kind, owner_id)

    def count(model: Any, user_col: Any, *extra: Any) -> int:
        query = select(func.count()).select_from(model).where(col(user_col).in_(users), *extra)
        if since is not None:
            query = query.where(col(model.created_at) > since)
        return int(session.exec(query).one())

    rated = (col(Feedback.rating) == "up") | col(Feedback.edited_text).is_not(None)
    return {
        "pairs": count(PreferencePair, PreferencePair.user_id),
        "sft": count(Sample, Sample.user_id) + count(Feedback, Feedback.user_id, rated),
    }


def check_triggers(queue: JobQueue, settings: TrainingSettings) -> dict[str, Any]:
    """Queue training for every owner past a threshold of new data (beat's entry).

    DPO when ``trigger_new_pairs`` pairs are new, else SFT when ``trigger_new_samples``
    SFT sources are. Owners with a job in progress or too little data are skipped.
    """
    with Session(queue.engine) as session:
        owners: list[tuple[OwnerKind, str]] = [
            ("user", u) for u in session.exec(select(User.id).order_by(col(User.id))).all()
        ]
        owners += [
            ("group", g) for g in session.exec(select(UserGroup.id).order_by(col(UserGroup.id)))
        ]
        fresh = {o: new_data(session, owner_kind=o[0], owner_id=o[1]) for o in owners}
    queued: list[str] = []
    skipped = 0
    for (owner_kind, owner_id), counts in fresh.items():
        kind: RequestedKind | None = None
        if counts["pairs"] >= settings.trigger_new_pairs:
            kind = "dpo"
        elif counts["sft"] >= settings.trigger_new_samples:
            kind = "sft"
        if kind is None:
            continue
        try:
            job = submit_training(
                queue,
                settings,
                owner_kind=owner_kind,
                owner_id=owner_id,
                kind=kind,
                reason="threshold",
            )
        except (TrainingBusy, NotEnoughData) as exc:
            log.info("no training for %s %s: %s", owner_kind, owner_id, exc)
            skipped += 1
            continue
        queued.append(job.id)
    return {"owners": len(owners), "queued": queued, "skipped": skipped}


def retrain_after_deletion(queue: JobQueue, settings: TrainingSettings) -> list[str]:
    """Queue a retrain (without the deleted data) for owners whose adapter was retired.

    An adapter retired because its training data was deleted, with no newer adapter of
    its owner, gets one retrain keyed by its id. Owners that are gone, busy, or left with
    too little data get none (they are routed to their next target meanwhile).
    """
    with Session(queue.engine) as session:
        retired = session.exec(
            select(AdapterRecord).where(
                AdapterRecord.status == "retired", AdapterRecord.status_reason == DATA_DELETED
            )
        ).all()
        wanted: list[tuple[str, str, str, str]] = []
        for record in retired:
            newer = session.exec(
                select(func.count())
                .select_from(AdapterRecord)
                .where(
                    AdapterRecord.owner_kind == record.owner_kind,
                    AdapterRecord.owner_id == record.owner_id,
                    AdapterRecord.version > record.version,
                )
            ).one()
            owner = (
                session.get(User, record.owner_id)
                if record.owner_kind == "user"
                else session.get(UserGroup, record.owner_id)
            )
            if not newer and owner is not None:
                wanted.append((record.owner_kind, record.owner_id, record.kind, record.id))
    queued: list[str] = []
    for owner_kind, owner_id, kind, adapter_id in wanted:
        try:
            job = submit_training(
                queue,
                settings,
                owner_kind=owner_kind,  # type: ignore[arg-type]
                owner_id=owner_id,
                kind=kind,  # type: ignore[arg-type]
                reason="data deleted",
                key_suffix=f"retrain-{adapter_id}",
            )
        except (TrainingBusy, NotEnoughData) as exc:
            log.info("no retrain for %s %s: %s", owner_kind, owner_id, exc)
            continue
        queued.append(job.id)
    return queued
