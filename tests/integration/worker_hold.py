"""A test-only task that runs while a ``hold`` file exists, so a test can stop its worker.

Workers load it through ``ATTUNE_WORKER__INCLUDE``. Each run leaves ``run-<n>``; the work
completes (a line in ``done.txt``) once the file is gone, or after ``payload.seconds``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from memory.records.jobs import Job
from workers.app import attune_app, context_of
from workers.runner import run_job


@shared_task(bind=True, name="attune.test_hold")
def hold(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Wait while ``<payload.dir>/hold`` exists, then append the job id to ``done.txt``."""

    def work(job: Job) -> dict[str, Any]:
        out = Path(job.payload["dir"])
        run = len(list(out.glob("run-*"))) + 1
        (out / f"run-{run}").touch()
        deadline = time.monotonic() + job.payload["seconds"]
        while (out / "hold").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with (out / "done.txt").open("a") as f:
            f.write(f"{job.id}\n")
        return {"run": run}

    ctx = context_of(self.app)
    return run_job(self, ctx.engine, attune_app(self.app).attune_settings.worker, job_id, work)
