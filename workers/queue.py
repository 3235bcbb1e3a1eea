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

BROKER_MARK = "attune:broker-mark"
"""A Redis key the sweeper sets in the broker: when it is gone, so are the broker's
messages (a Redis restarted without persistence, or flushed)."""

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
        self._unsent: set[str] = set()
        """Jobs of this process whose message the broker refused: sent again with the
        next message that goes through, or by the next sweep."""

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
            except Exception as exc:
                # The type only: a broker error can quote its URL, with a password.
                log.error(
                    "could not send job %s (%s): %s; it is sent again when the broker answers",
                    job.id,
                    kind,
                    type(exc).__name__,
                )
                self._unsent.add(job.id)
            else:
                self._send_unsent()
        return job

    def _send_unsent(self) -> None:
        """Send the jobs whose message the broker refused earlier, now that it answers."""
        while self._unsent:
            job = jobs.get(self.engine, self._unsent.pop())
            if job is not None and job.status == "queued":
                log.warning("re-sending job %s (%s): the broker answers again", job.id, job.kind)
                self.send(job)

    def send(self, job: Job) -> None:
        """Send ``job``'s task (again)."""
        self.app.send_task(task_name(job.kind), args=[job.id], queue=job.queue)

    def sweep(self) -> int:
        """Send again the jobs whose task may be lost; return how many.

        Queued longer than the visibility timeout (the broker would have redelivered a
        message that exists), or running under a heartbeat older than ``stale_after_s``
        (its worker died, and its message may be gone). When the broker lost its messages
        since the last sweep (:meth:`broker_lost`), every queued job is sent again at
        once. A copy of a message that still exists is harmless: the job is claimed once.
        """
        s = self.settings
        queued_before = utcnow() - timedelta(seconds=s.visibility_timeout_s)
        if self.broker_lost():
            log.warning("the broker lost its messages (restarted or flushed): re-sending jobs")
            queued_before = utcnow()
        lost = jobs.lost(
            self.engine,
            queued_before=queued_before,
            stale_after=timedelta(seconds=s.stale_after_s),
        )
        for job in lost:
            log.warning("re-sending job %s (%s, %s)", job.id, job.kind, job.status)
            self.send(job)
            self._unsent.discard(job.id)
        return len(lost)

    def broker_lost(self) -> bool:
        """Whether a Redis broker lost its data since the last sweep (and mark it anew).

        The sweeper keeps :data:`BROKER_MARK` in the broker; a missing mark means the
        broker's messages went with it, whichever process sweeps (so the first sweep
        on a new broker says so too, and sends queued jobs once more: harmless). The
        embedded broker is a durable file: never.
        """
        url = str(self.app.conf.broker_url or "")
        if not url.startswith(("redis://", "rediss://")):
            return False
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            key = self.settings.redis_key_prefix + BROKER_MARK
            return bool(client.set(key, utcnow().isoformat(), nx=True))
        finally:
            client.close()
