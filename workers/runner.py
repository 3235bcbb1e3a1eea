"""Running a job inside a task: claim, heartbeat, the work, the outcome, retries."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Task
from celery.exceptions import Retry
from sqlalchemy.engine import Engine

from memory.records import jobs
from memory.records.jobs import Job
from workers.app import attune_app
from workers.config import WorkerSettings

log = logging.getLogger(__name__)

Work = Callable[[Job], dict[str, Any]]
"""The plain function a task runs for a claimed job; returns the job's result."""


class _Heartbeat:
    """Updates the job's heartbeat every ``every`` seconds in a daemon thread."""

    def __init__(self, engine: Engine, job_id: str, worker: str, every: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(engine, job_id, worker, every), daemon=True
        )

    def _run(self, engine: Engine, job_id: str, worker: str, every: float) -> None:
        while not self._stop.wait(every):
            try:
                jobs.heartbeat(engine, job_id, worker=worker)
            except Exception:  # a missed beat is not fatal; the next one may land
                log.warning("heartbeat of job %s failed", job_id, exc_info=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def worker_name(task: Task[Any, Any]) -> str:
    """This delivery's worker: hostname, process and thread (unique per running task)."""
    host = task.request.hostname or socket.gethostname()
    return f"{host}:{threading.get_ident()}"[:200]


def run_job(
    task: Task[Any, Any], engine: Engine, settings: WorkerSettings, job_id: str, work: Work
) -> dict[str, Any] | None:
    """Claim job ``job_id`` and run ``work`` on it; what every task does.

    A delivery that cannot claim the job (done, running elsewhere, unknown) returns
    ``None`` and its message is acknowledged. When ``work`` raises, the job goes back to
    ``queued`` with the error and the task retries with exponential backoff; after the
    queue's ``max_retries`` the job fails with the error. A job its worker gave up on while
    it ran (``workers.inflight``: the embedded worker's stop) is already ``queued`` again;
    whatever ``work`` did, nothing is recorded and the task is sent again.
    """
    me = worker_name(task)
    max_retries = task.max_retries if task.max_retries is not None else 0
    job = jobs.claim(
        engine,
        job_id,
        worker=me,
        stale_after=timedelta(seconds=settings.stale_after_s),
        max_attempts=max_retries + 3,  # retries, plus a couple of worker deaths
    )
    if job is None:
        current = jobs.get(engine, job_id)
        log.info(
            "job %s not claimed (%s); nothing to do",
            job_id,
            current.status if current is not None else "unknown",
        )
        return None
    in_flight = attune_app(task.app).in_flight
    try:
        with in_flight.holding(job_id, me), _Heartbeat(engine, job_id, me, settings.heartbeat_s):
            result = work(job)
    except Retry:
        raise
    except Exception as exc:
        if in_flight.was_released(job_id):
            _send_again(task, job)
            return None
        error = f"{type(exc).__name__}: {exc}"
        retries = task.request.retries
        if retries < max_retries:
            jobs.finish(engine, job_id, worker=me, error=error, retry=True)
            countdown = min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2**retries)
            log.warning("job %s failed (%s); retry in %.0fs", job_id, error, countdown)
            raise task.retry(exc=exc, countdown=countdown) from exc
        log.exception("job %s failed for good", job_id)
        jobs.finish(engine, job_id, worker=me, error=error)
        return None
    if not jobs.finish(engine, job_id, worker=me, result=result) and in_flight.was_released(job_id):
        _send_again(task, job)
        return None
    return result


def _send_again(task: Task[Any, Any], job: Job) -> None:
    """Send the task of a job released while it ran (a copy of a message is harmless)."""
    log.info("job %s was released while it ran; its task is sent again", job.id)
    try:
        task.app.send_task(task.name, args=[job.id], queue=job.queue)
    except Exception:  # the process is stopping; its message comes back from the broker
        log.warning("could not send job %s again; the broker will redeliver it", job.id)
