"""``attune worker``, ``attune beat`` and ``attune jobs``; mounted by ``api.cli``."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

import typer

jobs_app = typer.Typer(help="Background jobs (reads the record store).", no_args_is_help=True)


def worker(
    queue: Annotated[
        str, typer.Option(help="Queue to consume: light (CPU work) or heavy (training).")
    ] = "light",
    concurrency: Annotated[
        int | None, typer.Option(help="Tasks at once (default: the queue's setting).")
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="threads, solo or prefork (default: the queue's).")
    ] = None,
) -> None:
    """Run a Celery worker for one queue (scale-out: any number, on any machine)."""
    from wiring.settings import load_settings
    from workers.app import make_celery

    if queue not in ("light", "heavy"):
        raise typer.BadParameter("use light or heavy", param_hint="--queue")
    name: Literal["light", "heavy"] = "light" if queue == "light" else "heavy"
    settings = load_settings()
    q = getattr(settings.worker, name)
    app = make_celery(settings)
    argv = [
        "worker",
        f"--queues={settings.worker.queue_name(name)}",
        f"--concurrency={concurrency or q.concurrency}",
        f"--pool={pool or q.pool}",
        f"--loglevel={settings.log_level}",
        f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h",
    ]
    if not app.conf.worker_enable_remote_control:  # the SQL broker has no fanout exchange
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    app.worker_main(argv)


def beat() -> None:
    """Run Celery beat: session summaries, prompt optimizer, lost-job sweeps.

    One per deployment; the embedded worker runs its own.
    """
    from wiring.settings import load_settings
    from workers.app import make_celery

    settings = load_settings()
    app = make_celery(settings)
    app.start(["beat", f"--loglevel={settings.log_level}"])


@jobs_app.command("list")
def jobs_list(
    user: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed.")] = None,
    kind: Annotated[str | None, typer.Option(help="distill, pairs, delete_turn, ...")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List jobs: id, kind, status, progress, attempts, created, user, error."""
    from memory.records import jobs
    from memory.records.db import open_engine
    from wiring.settings import load_settings

    engine = open_engine(load_settings().db)
    for j in jobs.list_jobs(engine, user_id=user, status=status, kind=kind, limit=limit):
        typer.echo(
            f"{j.id}\t{j.kind}\t{j.status}\t{j.progress:.2f}\t{j.attempts}\t"
            f"{j.created_at:%Y-%m-%d %H:%M:%S}\t{j.user_id or '-'}\t{(j.error or '')[:80]}"
        )


@jobs_app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """Print one job as JSON."""
    from memory.records import jobs
    from memory.records.db import open_engine
    from wiring.settings import load_settings

    job = jobs.get(open_engine(load_settings().db), job_id)
    if job is None:
        typer.echo(f"no job with id {job_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(job.model_dump(mode="json"), indent=2))
