"""``attune train`` and ``attune adapters``: train, list, promote and roll back adapters.

``attune train USER_ID`` runs the same plain function as the ``train_sft``/``train_dpo``
jobs (``adapters.jobs.run_training``) in this process, with a progress bar; ``--queue``
submits a job for the workers instead. Both keep to one training job per user.

Promotion (by ``train``, ``promote`` or ``rollback``) publishes through the composition
root's core, like the server and the workers: this process's backend loads the adapter
(checking that it loads), and a running server's local engine finds it on disk by name at
the next request that routes to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

adapters_app = typer.Typer(
    help="Per-user LoRA adapters: versions, promotion, rollback.", no_args_is_help=True
)

KindOpt = Annotated[str, typer.Option(help="sft, dpo or auto (DPO when there are enough pairs).")]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open() -> tuple[Any, Any]:
    from memory.records.db import open_engine
    from wiring.settings import load_settings

    settings = load_settings()
    return settings, open_engine(settings.db)


@contextmanager
def _core() -> Iterator[Any]:
    """The composition root's core (records, backend loaded on demand), closed on exit."""
    from wiring.services import build_core
    from wiring.settings import load_settings

    core = build_core(load_settings())
    try:
        yield core
    finally:
        core.close()


def train(
    user_id: Annotated[str, typer.Argument(help="The user whose adapter to train.")],
    kind: KindOpt = "auto",
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Optimizer steps (default: per model size).")
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Submit a job for the workers instead.")
    ] = False,
) -> None:
    """Train, gate and (if it passes) promote an adapter for a user."""
    from sqlmodel import Session
    from tqdm import tqdm

    from adapters.jobs import NotEnoughData, TrainingPaths, data_counts, resolve_kind, run_training
    from adapters.model_store import resolve_model_dir
    from memory.records.tables import User
    from workers.training import TrainingBusy, active_job, submit_training

    if kind not in ("sft", "dpo", "auto"):
        raise typer.BadParameter("use sft, dpo or auto", param_hint="--kind")
    settings, engine = _open()
    with Session(engine) as session:
        if session.get(User, user_id) is None:
            _fail(f"no user with id {user_id!r}")
        counts = data_counts(session, owner_kind="user", owner_id=user_id)
    try:
        resolved = resolve_kind(counts, kind, settings.training)  # type: ignore[arg-type]
    except NotEnoughData as exc:
        _fail(str(exc))
        return
    if queue:
        from workers.app import make_celery
        from workers.queue import JobQueue

        jobs = JobQueue(make_celery(settings), engine, settings.worker)
        try:
            job = submit_training(
                jobs,
                settings.training,
                owner_kind="user",
                owner_id=user_id,
                kind=resolved,
                max_steps=max_steps,
            )
        except TrainingBusy as exc:
            _fail(str(exc), 1)
            return
        typer.echo(f"queued {job.kind} job {job.id}; follow it with `attune jobs show {job.id}`")
        return
    busy = active_job(engine, owner_kind="user", owner_id=user_id)
    if busy is not None:
        _fail(f"training job {busy.id} is already {busy.status} for this user", 1)
    assert settings.model.adapters_dir is not None and settings.training.work_dir is not None
    paths = TrainingPaths(
        base_model_dir=resolve_model_dir(settings.model),
        adapters_dir=settings.model.adapters_dir,
        work_dir=settings.training.work_dir,
    )
    with _core() as core, tqdm(total=100, desc=f"{user_id} {resolved}", unit="%") as bar:

        def progress(value: float) -> None:
            bar.update(round(value * 100) - bar.n)

        result = run_training(
            core.engine,
            settings.training,
            paths,
            owner_kind="user",
            owner_id=user_id,
            kind=resolved,
            run_id=f"cli-{uuid.uuid4().hex[:12]}",
            overrides={"max_steps": max_steps} if max_steps else None,
            publisher=core,
            progress=progress,
        )
    typer.echo(json.dumps(result, indent=2, default=str))


@adapters_app.command("list")
def list_adapters(user_id: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """The user's and their group's adapters: status, gate verdict, lineage."""
    from sqlmodel import Session

    from adapters.overview import user_adapters

    _, engine = _open()
    with Session(engine) as session:
        view = user_adapters(session, user_id=user_id)
    if view is None:
        _fail(f"no user with id {user_id!r}")
        return
    typer.echo(f"user {view.user_id}: serves {view.user_adapter or '-'}")
    typer.echo(f"group {view.group_name or '-'}: serves {view.group_adapter or '-'}")
    for record in (*view.adapters, *view.group_adapters):
        gate = record.metrics.get("gate", {})
        verdict = {True: "passed", False: "failed", None: "-"}[gate.get("passed")]
        typer.echo(
            f"{record.id}  {record.name:<40} {record.status:<9} gate {verdict:<6} "
            f"parent {record.parent_id or '-'}  {record.status_reason or ''}"
        )


@adapters_app.command("promote")
def promote(
    user_id: Annotated[str, typer.Argument(help="The user.")],
    adapter_id: Annotated[str, typer.Argument(help="One of the user's adapters.")],
) -> None:
    """Serve the user with this adapter from now on."""
    from sqlmodel import Session

    from adapters import registry
    from adapters.records import AdapterRecord

    with _core() as core, Session(core.engine) as session:
        adapters_dir = core.settings.model.adapters_dir
        assert adapters_dir is not None
        record = session.get(AdapterRecord, adapter_id)
        if record is None or (record.owner_kind, record.owner_id) != ("user", user_id):
            _fail(f"user {user_id} has no adapter {adapter_id!r}")
            return
        try:
            registry.promote(
                session,
                adapter_id=adapter_id,
                adapters_dir=adapters_dir,
                publisher=core,
                reason="promoted by hand",
            )
        except registry.RegistryError as exc:
            _fail(str(exc), 1)
        session.commit()
        typer.echo(f"promoted {record.name}")


@adapters_app.command("rollback")
def rollback(user_id: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Retire the user's promoted adapter and bring back the one it replaced."""
    from sqlmodel import Session

    from adapters import registry

    with _core() as core, Session(core.engine) as session:
        adapters_dir = core.settings.model.adapters_dir
        assert adapters_dir is not None
        try:
            back = registry.rollback(
                session,
                owner_kind="user",
                owner_id=user_id,
                adapters_dir=adapters_dir,
                publisher=core,
            )
        except registry.RegistryError as exc:
            _fail(str(exc), 1)
            return
        session.commit()
        typer.echo(f"now serving {back.name}" if back else "now serving the group adapter or base")


@adapters_app.command("placements")
def placements(
    adapter: Annotated[str | None, typer.Option(help="Only this adapter.")] = None,
) -> None:
    """Which vLLM replica holds which adapter, as every Attune process recorded it."""
    from adapters.placements import list_placements

    _, engine = _open()
    rows = list_placements(engine, adapter=adapter)
    if not rows:
        typer.echo("no placements recorded (the vllm backend has published nothing)")
        return
    for row in rows:
        when = row.updated_at.isoformat(timespec="seconds")
        typer.echo(f"{row.adapter:<40} {row.replica:<28} {row.state:<8} {when}  {row.path}")
