"""Job records: what background work was asked for, by whom, and how it went.

A job is created before its task is sent, under an idempotency ``key`` that is unique: asking
twice for the same work returns the same job. Workers *claim* a job before working on it
and keep a heartbeat while they do; a delivery that finds its job succeeded, or running
under a live heartbeat, does nothing. Nothing here knows about Celery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select, update

from memory.records.tables import UTCDateTime, new_id, utcnow

Status = Literal["queued", "running", "succeeded", "failed"]
DONE: tuple[Status, ...] = ("succeeded", "failed")


class Job(SQLModel, table=True):
    """One unit of background work and its outcome."""

    __tablename__ = "jobs"
    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_jobs_key"),
        sa.Index("ix_jobs_user_created", "user_id", "created_at"),
        sa.Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: str = Field(default_factory=lambda: new_id("job"), primary_key=True, max_length=40)
    kind: str = Field(max_length=40)
    """What to do: ``distill``, ``delete_turn``, ``delete_user``, ``pairs``, ..."""
    key: str = Field(max_length=200)
    """Idempotency key: the same work always has the same key (``distill:turn_…``)."""
    queue: str = Field(max_length=40)
    status: str = Field(default="queued", max_length=16)
    """``queued``, ``running``, ``succeeded`` or ``failed``."""
    progress: float = 0.0
    """0..1."""
    attempts: int = 0
    """How many times a worker has started it."""
    error: str | None = Field(default=None, sa_type=sa.Text)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The ids the work is about (turn ids, a user id): never the data itself."""
    result: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    user_id: str | None = Field(default=None, max_length=40)
    """Whose work this is: that user's key may read the job (no foreign key: a deletion
    job outlives its user)."""
    worker: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def create(
    engine: Engine,
    *,
    kind: str,
    key: str,
    queue: str,
    payload: dict[str, Any],
    user_id: str | None,
) -> tuple[Job, bool]:
    """The job with ``key``, created as ``queued`` if there is none; ``(job, created)``."""
    with Session(engine, expire_on_commit=False) as session:
        found = session.exec(select(Job).where(Job.key == key)).first()
        if found is not None:
            return found, False
        job = Job(kind=kind, key=key, queue=queue, payload=payload, user_id=user_id)
        session.add(job)
        try:
            session.commit()
        except IntegrityError:  # someone created it between our read and our write
            session.rollback()
            return session.exec(select(Job).where(Job.key == key)).one(), False
        return job, True


def get(engine: Engine, job_id: str) -> Job | None:
    """The job with ``job_id``, or ``None``."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Job, job_id)


def list_jobs(
    engine: Engine,
    *,
    user_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    """Jobs, newest first, optionally of one user, status or kind."""
    query = select(Job)
    if user_id is not None:
        query = query.where(Job.user_id == user_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(
            query.order_by(col(Job.created_at).desc(), col(Job.id)).limit(limit)
        ).all()


def claim(
    engine: Engine, job_id: str, *, worker: str, stale_after: timedelta, max_attempts: int
) -> Job | None:
    """Mark the job running for ``worker``; ``None`` when this delivery must not run it.

    A job is claimable when it is queued, or running under a heartbeat older than
    ``stale_after`` (its worker died). Finished jobs and jobs with a live heartbeat are
    not: a redelivered task finds its work done, or in hand. The check and the update are
    one statement, so two deliveries cannot both claim. A job already started
    ``max_attempts`` times is failed instead (a task that kills its worker every time).
    """
    now = utcnow()
    claimable = (col(Job.status) == "queued") | (
        (col(Job.status) == "running") & (col(Job.heartbeat_at) < now - stale_after)
    )
    with Session(engine, expire_on_commit=False) as session:
        over = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, claimable, col(Job.attempts) >= max_attempts)
            .values(
                status="failed",
                error=f"gave up after {max_attempts} attempts (each one's worker died)",
                finished_at=now,
            )
        )
        taken = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, claimable)
            .values(
                status="running",
                attempts=col(Job.attempts) + 1,
                worker=worker,
                started_at=now,
                heartbeat_at=now,
                error=None,
            )
        )
        session.commit()
        if over.rowcount or not taken.rowcount:
            return None
        return session.get(Job, job_id)


def heartbeat(engine: Engine, job_id: str, *, worker: str, progress: float | None = None) -> bool:
    """Prove ``worker`` still runs the job; ``False`` if another worker took it over."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 1.0)
    return _update_own_run(engine, job_id, worker, values)


def finish(
    engine: Engine,
    job_id: str,
    *,
    worker: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    retry: bool = False,
) -> bool:
    """Record the outcome of ``worker``'s run; ``False`` if the job is no longer its.

    ``retry`` puts the job back to ``queued`` with the error kept (a retry is coming);
    otherwise it ends ``succeeded`` (no error) or ``failed``.
    """
    now = utcnow()
    values: dict[str, Any]
    if retry:
        values = {"status": "queued", "error": error, "heartbeat_at": None}
    elif error is None:
        values = {"status": "succeeded", "result": result, "progress": 1.0, "finished_at": now}
    else:
        values = {"status": "failed", "error": error, "finished_at": now}
    return _update_own_run(engine, job_id, worker, values)


def _update_own_run(engine: Engine, job_id: str, worker: str, values: dict[str, Any]) -> bool:
    """Set ``values`` on the job if ``worker`` still runs it; whether it did."""
    with Session(engine) as session:
        done = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.worker) == worker, col(Job.status) == "running")
            .values(**values)
        )
        session.commit()
        return bool(done.rowcount)


def lost(engine: Engine, *, queued_before: datetime, stale_after: timedelta) -> list[Job]:
    """Jobs whose task may be gone; the sweeper sends them again.

    Queued since before ``queued_before``, or running under a heartbeat older than
    ``stale_after``.
    """
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        return list(
            session.exec(
                select(Job).where(
                    ((col(Job.status) == "queued") & (col(Job.created_at) < queued_before))
                    | ((col(Job.status) == "running") & (col(Job.heartbeat_at) < now - stale_after))
                )
            ).all()
        )


def delete_for_user(engine: Engine, user_id: str, *, keep: Sequence[str] = ()) -> int:
    """Delete the user's jobs except ``keep`` (the deletion job itself); return how many."""
    with Session(engine) as session:
        done = session.exec(
            sa.delete(Job).where(col(Job.user_id) == user_id, col(Job.id).not_in(list(keep)))
        )
        session.commit()
        return int(done.rowcount)
