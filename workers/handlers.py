"""From a job's payload of ids to the plain functions that do the work.

Each handler loads what the ids name, calls the owning package, and returns a small JSON
result for the job. Every one is safe to run twice: its outputs have deterministic keys or
it deletes what may already be gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from memory import pairs
from memory.persona import profile as profiles
from memory.records.jobs import Job
from memory.records.tables import Turn, User
from memory.service import distillable
from workers.context import WorkerContext

if TYPE_CHECKING:
    from wiring.settings import Settings
    from workers.queue import JobQueue

log = logging.getLogger(__name__)


def window_key(kind: str, window_s: float) -> str:
    """Idempotency key of a periodic job: one per ``kind`` per time window."""
    return f"{kind}:{int(time.time() // window_s)}"


def distill(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """Distill the payload's ``turn_ids``: semantic memories, then the style statistics.

    Re-running is safe: extraction merges duplicates into the existing memory (adding the
    turn as a source once), and the style is recomputed, not accumulated.
    """
    turn_ids: list[str] = list(job.payload.get("turn_ids", []))
    with Session(ctx.engine, expire_on_commit=False) as session:
        turns = list(
            session.exec(
                select(Turn)
                .where(col(Turn.id).in_(turn_ids))
                .order_by(col(Turn.created_at), col(Turn.id))
            ).all()
        )
    written = ctx.memory.distill_many(turns)  # the assistant's own turns are skipped inside
    redeleted = _redelete_vanished(ctx, turns)
    users = sorted({t.user_id for t in turns if t.role == "user"})
    repaired = 0
    for user_id in users:
        _refresh_style(ctx, user_id)
        # Vectors an import deferred to a thread that a crash took with it.
        repaired += ctx.memory.repair_dense(user_id)
    return {
        "turns": len(turns),
        "memories_written": written,
        "styles_refreshed": len(users),
        "vectors_repaired": repaired,
        "deleted_meanwhile": redeleted,
    }


def _redelete_vanished(ctx: WorkerContext, turns: list[Turn]) -> int:
    """Re-run the deletion of turns deleted while they were being distilled.

    A deletion that overlapped this job may have swept the turn's memories before this
    job wrote its own. Checked after writing, so either the cascade (which sweeps again
    once the turn's row is gone) or this re-run sees them; both are idempotent.
    """
    ids = [t.id for t in turns if distillable(t)]
    if not ids:
        return 0
    with Session(ctx.engine) as session:
        alive = set(session.exec(select(Turn.id).where(col(Turn.id).in_(ids))))
    vanished = [t for t in turns if distillable(t) and t.id not in alive]
    for turn in vanished:
        ctx.deletion.turn(user_id=turn.user_id, turn_id=turn.id)
    return len(vanished)


def _refresh_style(ctx: WorkerContext, user_id: str) -> None:
    for attempt in (1, 2):
        with Session(ctx.engine) as session:
            try:
                profiles.refresh_style(session, user_id=user_id)
                session.commit()
                return
            except IntegrityError:
                # Two jobs of one user without a profile yet both created it; the loser
                # recomputes on top of the winner's row.
                session.rollback()
                if attempt == 2:
                    raise


def build_pairs(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """Rebuild the preference pairs of the prompt that the payload's ``turn_id`` answers."""
    with Session(ctx.engine) as session:
        counts = pairs.build_pairs(
            session, user_id=job.payload["user_id"], turn_id=job.payload["turn_id"]
        )
        session.commit()
    return counts


def delete_turn(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """The deletion cascade of one turn."""
    return ctx.deletion.turn(user_id=job.payload["user_id"], turn_id=job.payload["turn_id"])


def delete_user(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """The deletion cascade of a user (this job is kept, to report how it went)."""
    return ctx.deletion.user(user_id=job.payload["user_id"], keep_job_ids=[job.id])


def summaries(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """Summarize every user's sessions idle for ``session_idle_s`` (extractive summaries).

    ``MemoryService.summarize_ended_sessions`` skips sessions that have a summary, so a
    re-run writes nothing new.
    """
    idle = timedelta(seconds=ctx.session_idle_s)
    with Session(ctx.engine) as session:
        user_ids = list(session.exec(select(User.id)).all())
    written = sum(
        len(ctx.memory.summarize_ended_sessions(user_id, idle_after=idle)) for user_id in user_ids
    )
    return {"users": len(user_ids), "summaries_written": written}


def optimize_prompts(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """Run the procedural-memory optimizer for every user (the Persona issue's)."""
    from graph.optimizer import optimize_user

    services = ctx.graph_services()
    with Session(ctx.engine) as session:
        user_ids = list(session.exec(select(User.id)).all())
    outcomes: dict[str, int] = {}
    for user_id in user_ids:
        result = optimize_user(services, user_id)
        outcomes[result.status] = outcomes.get(result.status, 0) + 1
    return {"users": len(user_ids), "outcomes": outcomes}


def train(settings: Settings) -> Callable[[WorkerContext, Job], dict[str, Any]]:
    """The handler of ``train_sft`` and ``train_dpo`` jobs, for these settings.

    Progress goes into the job record as training steps finish; a redelivered job resumes
    from its newest checkpoint (``adapters.jobs.run_training``).
    """

    def work(ctx: WorkerContext, job: Job) -> dict[str, Any]:
        from adapters.jobs import TrainingPaths, run_training
        from adapters.model_store import resolve_model_dir
        from memory.records import jobs as job_records

        p = job.payload
        assert settings.model.adapters_dir is not None and settings.training.work_dir is not None
        paths = TrainingPaths(
            base_model_dir=resolve_model_dir(settings.model),
            adapters_dir=settings.model.adapters_dir,
            work_dir=settings.training.work_dir,
        )
        worker = job.worker or ""

        def progress(value: float) -> None:
            job_records.heartbeat(ctx.engine, job.id, worker=worker, progress=value)

        return run_training(
            ctx.engine,
            settings.training,
            paths,
            owner_kind=p["owner_kind"],
            owner_id=p["owner_id"],
            kind="sft" if job.kind == "train_sft" else "dpo",
            run_id=job.id,
            overrides=p.get("overrides"),
            publisher=ctx.core,  # the serving backend, loaded only to publish
            progress=progress,
        )

    return work


def training_triggers(
    settings: Settings, queue: JobQueue
) -> Callable[[WorkerContext, Job], dict[str, Any]]:
    """Beat's threshold check: queue training for owners with enough new data."""

    def work(ctx: WorkerContext, job: Job) -> dict[str, Any]:
        from workers.training import check_triggers

        return check_triggers(queue, settings.training)

    return work


def assign_groups(
    settings: Settings, queue: JobQueue
) -> Callable[[WorkerContext, Job], dict[str, Any]]:
    """Re-cluster users into groups, then queue group training past the thresholds."""

    def work(ctx: WorkerContext, job: Job) -> dict[str, Any]:
        from adapters.groups import assign_groups as assign
        from workers.training import check_triggers

        with Session(ctx.engine) as session:
            assignment = assign(session, group_count=settings.training.group_count)
            session.commit()
        return {**assignment.as_dict(), "training": check_triggers(queue, settings.training)}

    return work


def then_retrain(
    settings: Settings, queue: JobQueue, work: Callable[[WorkerContext, Job], dict[str, Any]]
) -> Callable[[WorkerContext, Job], dict[str, Any]]:
    """``work`` (a deletion cascade), then a retrain for owners whose adapter it retired."""

    def run(ctx: WorkerContext, job: Job) -> dict[str, Any]:
        from workers.training import retrain_after_deletion

        out = work(ctx, job)
        out["retrain_jobs"] = retrain_after_deletion(queue, settings.training)
        return out

    return run
