"""Submitting work: a job row first, then a task message that carries only the job id."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import Engine

from memory.records import jobs
from memory.records.jobs import Job
from memory.records.tables import utcnow

if TYPE_CHECKING:
    from celery import Celery

    from workers.config import WorkerSettings

log = logging.getLogger(__name__)

QueueName = Literal["light", "heavy"]

KIND_QUEUE: dict[str, QueueName] = {
    "distill": "light",
    "pairs": "light",
    "delete_turn": "light",
    "delete_user": "light",
    "summaries": "light",
    "optimize_prompts": "light",
    "training_triggers": "light",
    "assign_groups": "light",
    "train_sft": "heavy",
    "train_dpo": "heavy",
}
"""Every job kind and its queue: training runs on ``heavy``."""


def task_name(kind: str) -> str:
    """The Celery task that runs jobs of ``kind``."""
    return f"attune.{kind}"


class JobQueue:
    """Creates jobs idempotently and sends their tasks."""

    def __init__(self, app: Celery, engine: Engine, settings: WorkerSettings) -> None:
        """Send through ``app``; keep jobs in ``engine``'s database."""
        self.app = app
        self.engine = engine
        self.settings = settings

    def submit(self, kind: str, *, key: str, payload: dict[str, Any], user_id: str | None) -> Job:
        """The job for ``key``: created and sent if new, else the existing one, unsent.

        Blocking (database and broker I/O): call it from a thread in async code. A broker
        that refuses the message leaves the job ``queued``; the sweeper sends it later.
        """
        queue = KIND_QUEUE[kind]
        job, created = jobs.create(
            self.engine,
            kind=kind,
            key=key,
            queue=self.settings.queue_name(queue),
            payload=payload,
            user_id=user_id,
        )
        if created:
            try:
                self.send(job)
            except Exception:
                log.exception("could not send job %s (%s); the sweeper will retry", job.id, kind)
        return job

    def send(self, job: Job) -> None:
        """Send ``job``'s task (again)."""
        self.app.send_task(task_name(job.kind), args=[job.id], queue=job.queue)

    def sweep(self) -> int:
        """Send again the jobs whose task may be lost; return how many.

        Queued longer than the visibility timeout (the broker would have redelivered a
        message that exists), or running under a heartbeat older than ``stale_after_s``
        (its worker died, and its message may be gone). A copy of a message that still
        exists is harmless: the job is claimed once.
        """
        s = self.settings
        lost = jobs.lost(
            self.engine,
            queued_before=utcnow() - timedelta(seconds=s.visibility_timeout_s),
            stale_after=timedelta(seconds=s.stale_after_s),
        )
        for job in lost:
            log.warning("re-sending job %s (%s, %s)", job.id, job.kind, job.status)
            self.send(job)
        return len(lost)
