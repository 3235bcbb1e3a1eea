"""A test-only task: slow on its first attempt, so a test can kill its worker mid-task.

Workers load it through ``ATTUNE_WORKER__INCLUDE``. Its side effect (a line in a file) is
written only after the sleep, so the file shows how many times the work completed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from memory.records.jobs import Job
from workers.app import attune_app, context_of
from workers.runner import run_job


@shared_task(bind=True, name="attune.test_slow")
def slow(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Sleep ``payload.seconds`` on the first attempt, then append the job id to a file."""

    def work(job: Job) -> dict[str, Any]:
        out = Path(job.payload["dir"])
        (out / f"started-{job.attempts}").touch()
        time.sleep(job.payload["seconds"] if job.attempts == 1 else 0.1)
        with (out / "done.txt").open("a") as f:
            f.write(f"{job.id}\n")
        return {"attempt": job.attempts}

    ctx = context_of(self.app)
    return run_job(self, ctx.engine, attune_app(self.app).attune_settings.worker, job_id, work)
