"""The jobs a process's tasks are running, so that a worker that cannot wait may release them.

A graceful stop of the embedded worker (SIGTERM or Ctrl-C to ``attune serve``) lets running
tasks finish for a short grace period. A task still running after it (a training run, a
long distillation) is given up: its job goes back to ``queued`` (:func:`release`) and then
its message is put back on the broker, in that order, so that no delivery in between finds
the job running under a live heartbeat and drops the message. The job runs again after the
next start. The abandoned thread goes on until the process exits; what it finishes is not
recorded (the job is no longer its own), and its task puts the message back rather than
acknowledging it (``workers.runner``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, update

from memory.records.jobs import Job

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: its worker stopped before it ended; it runs again"
"""The error a released job carries until its next claim clears it."""


class InFlight:
    """Jobs claimed by this process's tasks and not yet ended, and the signal to give up.

    Shared by the Celery apps of one embedded worker; a standalone worker has one too and
    never gives up (Celery's warm shutdown waits for its tasks).
    """

    def __init__(self) -> None:
        """Start empty, not given up."""
        self._lock = threading.Lock()
        self._held: dict[str, str] = {}  # job id -> worker name
        self._released: set[str] = set()
        self.given_up = threading.Event()
        """Set once :meth:`release_all` has run: the pool stops waiting for its tasks."""

    @contextmanager
    def holding(self, job_id: str, worker: str) -> Iterator[None]:
        """Record that ``worker`` runs job ``job_id`` for the duration of the block."""
        with self._lock:
            self._held[job_id] = worker
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job_id, None)

    def was_released(self, job_id: str) -> bool:
        """Whether :meth:`release_all` gave up on the job while it was held (consumed)."""
        with self._lock:
            if job_id in self._released:
                self._released.discard(job_id)
                return True
            return False

    def held(self) -> list[str]:
        """The ids of the jobs held now."""
        with self._lock:
            return list(self._held)

    def release_all(self, engine: Engine) -> list[str]:
        """Give up on every held job: back to ``queued``, then set :attr:`given_up`.

        Returns the ids of the jobs released.
        """
        with self._lock:
            held = dict(self._held)
            # Marked before the update: a task whose finish fails because of it must know.
            self._released.update(held)
        released: list[str] = []
        for job_id, worker in held.items():
            if release(engine, job_id, worker):
                released.append(job_id)
                log.warning("job %s interrupted by the worker's stop; it runs again", job_id)
            else:  # it ended meanwhile, recorded as its task left it
                with self._lock:
                    self._released.discard(job_id)
        self.given_up.set()
        return released


def release(engine: Engine, job_id: str, worker: str) -> bool:
    """Put ``worker``'s running job back to ``queued``; whether it was still its own.

    The attempt is not counted: the attempt limit stops a task that kills its worker every
    time, and a stop of the worker is not that.
    """
    with Session(engine) as session:
        done = session.exec(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.worker) == worker, col(Job.status) == "running")
            .values(
                status="queued",
                attempts=col(Job.attempts) - 1,
                heartbeat_at=None,
                error=INTERRUPTED,
            )
        )
        session.commit()
        return bool(done.rowcount)
