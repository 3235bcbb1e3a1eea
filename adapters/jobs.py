"""One training job, end to end: snapshot → train → gate → register → promote.

:func:`run_training` is the plain function a Celery task (``attune.train_sft``,
``attune.train_dpo``) or ``attune train`` calls. It is safe to run again for the same job:
the first run writes ``state.json`` into the job's work directory (the dataset snapshot and
the adapter version it reserved), so a redelivered job trains on the same data into the same
output directory and resumes from the newest checkpoint there; an adapter already published
or registered is not trained or registered twice.

Publication: an adapter that passes the gate is promoted through the caller's
``publisher`` (the serving backend, see ``adapters.backend``), which loads it before the
registry points its owner at it. A worker in another process than the server publishes into
its own backend; the server's local engine then finds ``<adapters_dir>/<name>`` on disk at
the first request that routes to it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from adapters import registry
from adapters.config import TrainingSettings
from adapters.dataset_sources import owner_user_ids, preference_pairs, sft_examples, snapshot_owner
from adapters.datasets import read_snapshot, split_held_out
from adapters.hparams import TrainingKind, hparams_for
from adapters.model_store import model_id_for
from adapters.records import AdapterRecord, DatasetSnapshot, OwnerKind, Sample
from adapters.registry import Publisher
from adapters.training import RunSpec, TrainingResult, finished
from memory.records.tables import Turn

log = logging.getLogger(__name__)

RequestedKind = Literal["sft", "dpo", "auto"]
StageFn = Callable[[float], None]
"""Receives the job's overall progress, 0..1."""

SNAPSHOT_DONE, TRAIN_DONE, GATE_DONE = 0.05, 0.85, 0.95


class NotEnoughData(ValueError):
    """The owner has too little data for the requested kind of training."""


@dataclass(frozen=True)
class DataCounts:
    """How much training data an owner has now."""

    sft: int
    pairs: int


@dataclass(frozen=True)
class TrainingPaths:
    """Where a deployment keeps models, adapters and runs."""

    base_model_dir: Path
    adapters_dir: Path
    work_dir: Path


def data_counts(session: Session, *, owner_kind: OwnerKind, owner_id: str) -> DataCounts:
    """The owner's SFT examples and preference pairs (before the held-out split)."""
    users = owner_user_ids(session, owner_kind=owner_kind, owner_id=owner_id)
    if not users:
        return DataCounts(0, 0)
    return DataCounts(
        len(sft_examples(session, user_ids=users)), len(preference_pairs(session, user_ids=users))
    )


def resolve_kind(
    counts: DataCounts, kind: RequestedKind, settings: TrainingSettings
) -> TrainingKind:
    """The kind of job to run: ``auto`` prefers DPO when there are enough pairs.

    Raises:
        NotEnoughData: Too few examples or pairs, with what is needed.
    """
    sft_ok = counts.sft >= settings.min_sft_examples
    dpo_ok = counts.pairs >= settings.min_dpo_pairs
    if kind == "dpo" or (kind == "auto" and dpo_ok):
        if not dpo_ok:
            raise NotEnoughData(
                f"DPO needs at least {settings.min_dpo_pairs} preference pairs; "
                f"there are {counts.pairs} (rate or edit more replies)"
            )
        return "dpo"
    if not sft_ok:
        raise NotEnoughData(
            f"SFT needs at least {settings.min_sft_examples} examples (up-voted or edited "
            f"replies, writing samples); there are {counts.sft}"
            + (
                f", and DPO needs {settings.min_dpo_pairs} preference pairs; there are "
                f"{counts.pairs}"
                if kind == "auto"
                else ""
            )
        )
    return "sft"


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _reserve(
    engine: Engine,
    settings: TrainingSettings,
    paths: TrainingPaths,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    kind: TrainingKind,
    run_dir: Path,
) -> dict[str, Any]:
    """The run's snapshot and version: read back on a redelivery, else chosen and saved."""
    state_path = run_dir / "state.json"
    state = _load_state(state_path)
    if state is not None:
        return state
    assert settings.datasets_url is not None
    with Session(engine) as session:
        snap = snapshot_owner(
            session,
            owner_kind=owner_kind,
            owner_id=owner_id,
            root=settings.datasets_url,
            storage_options=settings.storage_options,
        )
        version = registry.next_version(session, owner_kind=owner_kind, owner_id=owner_id)
        # A directory left by a run that published but never registered is not ours.
        while (paths.adapters_dir / registry.adapter_name(owner_id, kind, version)).exists():
            version += 1
        session.commit()
        state = {"snapshot_id": snap.id, "snapshot_url": snap.url, "version": version}
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(state_path)
    return state


def sources_still_exist(session: Session, snapshot: DatasetSnapshot) -> bool:
    """Whether every turn and sample a snapshot was built from is still stored.

    Deletion retires adapters trained on deleted data; a job that snapshotted the data
    before it was deleted must not promote its adapter afterwards.
    """
    for table, ids in (
        (Turn, set(snapshot.source_turn_ids)),
        (Sample, set(snapshot.source_sample_ids)),
    ):
        if ids:
            found = session.exec(
                select(func.count()).select_from(table).where(col(table.id).in_(list(ids)))
            ).one()
            if int(found) < len(ids):
                return False
    return True


def run_training(
    engine: Engine,
    settings: TrainingSettings,
    paths: TrainingPaths,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    kind: TrainingKind,
    run_id: str,
    overrides: dict[str, Any] | None = None,
    publisher: Publisher | None,
    progress: StageFn | None = None,
) -> dict[str, Any]:
    """Train, gate, register and (when the gate passes) promote an owner's adapter.

    Args:
        engine: The record store.
        settings: Training settings (datasets, gate thresholds).
        paths: Base model, adapters and work directories.
        owner_kind: ``user`` or ``group``.
        owner_id: The owner's id.
        kind: ``sft`` or ``dpo``.
        run_id: Names the run's work directory (the job id): the same id resumes.
        overrides: Hyper-parameter overrides (``max_steps`` …).
        publisher: The serving backend a passing adapter is published on (``None`` only
            where nothing serves: tests of the job's bookkeeping).
        progress: Receives the overall progress, 0..1.

    Returns:
        The job's result: adapter id, name, status, gate reasons and figures.

    Raises:
        NotEnoughData: The snapshot has too little data on the training side.
    """
    report = progress or (lambda _p: None)
    run_dir = paths.work_dir / run_id
    state = _reserve(
        engine,
        settings,
        paths,
        owner_kind=owner_kind,
        owner_id=owner_id,
        kind=kind,
        run_dir=run_dir,
    )
    version = int(state["version"])
    name = registry.adapter_name(owner_id, kind, version)
    with Session(engine) as session:
        existing = registry.by_version(
            session, owner_kind=owner_kind, owner_id=owner_id, version=version
        )
        if existing is not None and "gate" in existing.metrics:  # a finished run, redelivered
            return _result(existing)
    snapshot = read_snapshot(state["snapshot_url"], settings.storage_options)
    report(SNAPSHOT_DONE)
    held: Sequence[Any]  # scored by the gate
    if kind == "sft":
        train_sft, held = split_held_out(
            snapshot.sft, lambda e: e.source_id, settings.held_out_fraction
        )
        train_count = len(train_sft)
    else:
        train_dpo, held = split_held_out(
            snapshot.pairs, lambda p: p.source_id, settings.held_out_fraction
        )
        train_count = len(train_dpo)
    held_count = len(held)
    if train_count == 0 or held_count == 0:
        raise NotEnoughData(
            f"snapshot {state['snapshot_id']} has {train_count} training and {held_count} "
            f"held-out {'examples' if kind == 'sft' else 'pairs'}; need both"
        )
    if settings.save_steps is not None:  # the setting; a job's own override still wins
        overrides = {"save_steps": settings.save_steps, **(overrides or {})}
    hparams = hparams_for(kind, paths.base_model_dir, overrides)

    def tick(step: int, total: int) -> None:
        report(SNAPSHOT_DONE + (TRAIN_DONE - SNAPSHOT_DONE) * step / max(total, 1))

    spec = RunSpec(
        kind=kind,
        base_model_dir=paths.base_model_dir,
        work_dir=run_dir,
        output_dir=paths.adapters_dir / name,
        hparams=hparams,
        device=settings.device,
        progress=tick,
        metadata={"owner": f"{owner_kind}:{owner_id}", "dataset": snapshot.content_hash},
    )
    result: TrainingResult
    if kind == "sft":
        from adapters.sft import train_sft as train

        result = train(train_sft, spec)
    else:
        from adapters.dpo import train_dpo as train_pairs

        result = train_pairs(train_dpo, spec)
    report(TRAIN_DONE)
    with Session(engine) as session:
        snap_row = session.get(DatasetSnapshot, state["snapshot_id"])
        deleted = snap_row is None or not sources_still_exist(session, snap_row)
    if deleted:
        # Weights trained on data deleted while the job ran are not kept, not registered.
        shutil.rmtree(spec.output_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        log.info("%s:%s: training data deleted mid-run; weights discarded", owner_kind, owner_id)
        report(1.0)
        return {
            "adapter_id": None,
            "owner": f"{owner_kind}:{owner_id}",
            "kind": kind,
            "status": "discarded",
            "reasons": ["training data was deleted while the job ran; weights discarded"],
        }
    decision = _gate(engine, settings, paths, spec, owner_kind, owner_id, kind, held)
    report(GATE_DONE)
    with Session(engine) as session:
        record = registry.register_candidate(
            session,
            owner_kind=owner_kind,
            owner_id=owner_id,
            kind=kind,
            version=version,
            base_model=model_id_for(paths.base_model_dir),
            dataset_snapshot_id=state["snapshot_id"],
            metrics={
                "training": result.as_dict(),
                "train_count": train_count,
                "held_out_count": held_count,
            },
            hparams=hparams.as_dict(),
        )
        passed, reasons = decision.passed, list(decision.reasons)
        snap_row = session.get(DatasetSnapshot, state["snapshot_id"])
        if snap_row is None or not sources_still_exist(session, snap_row):
            passed = False
            reasons.append("training data was deleted while the job ran")
        registry.record_gate(
            session, adapter_id=record.id, passed=passed, reasons=reasons, metrics=decision.metrics
        )
        if passed:
            registry.promote(
                session,
                adapter_id=record.id,
                adapters_dir=paths.adapters_dir,
                publisher=publisher,
                reason="passed the gate",
            )
        session.commit()
        session.refresh(record)
        out = _result(record)
    shutil.rmtree(run_dir, ignore_errors=True)  # the job is recorded; nothing to resume
    report(1.0)
    return out


def _gate(
    engine: Engine,
    settings: TrainingSettings,
    paths: TrainingPaths,
    spec: RunSpec,
    owner_kind: OwnerKind,
    owner_id: str,
    kind: TrainingKind,
    held: Sequence[Any],
) -> Any:
    """Score the candidate on ``held`` (held out) against the base model and current adapter."""
    from adapters.quality_gate import (
        Comparison,
        GateThresholds,
        Scorer,
        evaluate_dpo,
        evaluate_sft,
        general_texts,
    )

    thresholds = GateThresholds(
        sft_margin=settings.sft_margin,
        general_max_rise=settings.general_max_rise,
        dpo_min_gain=settings.dpo_min_gain,
    )
    with Session(engine) as session:
        current = registry.promoted(session, owner_kind=owner_kind, owner_id=owner_id)
        current_name = current.name if current is not None else None
    scorer = Scorer(paths.base_model_dir, device=settings.device)
    scorer.add_adapter("candidate", spec.output_dir)
    current_label: str | None = None
    if current_name is not None and finished(paths.adapters_dir / current_name) is not None:
        scorer.add_adapter("current", paths.adapters_dir / current_name)
        current_label = "current"
    comparison = Comparison(scorer, general_texts(), "candidate", current_label, thresholds)
    if kind == "sft":
        return evaluate_sft(comparison, held)
    return evaluate_dpo(comparison, held)


def _result(record: AdapterRecord) -> dict[str, Any]:
    gate = record.metrics.get("gate", {})
    return {
        "adapter_id": record.id,
        "adapter": record.name,
        "owner": f"{record.owner_kind}:{record.owner_id}",
        "kind": record.kind,
        "version": record.version,
        "status": record.status,
        "gate_passed": gate.get("passed"),
        "reasons": gate.get("reasons", []),
        "training": record.metrics.get("training", {}),
    }
