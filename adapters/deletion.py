"""Deletion that reaches training data and adapter weights.

The deletion cascades of ``memory.deletion.Deletion`` call :class:`AdapterPurger`, which the
composition root (``wiring.services.build_deletion``) builds with the deployment's file
locations and hands to every cascade. What goes, in this order, so that a cascade
interrupted by a crash and run again finishes the work (every step tolerates what is
already gone):

* **a turn**: every dataset snapshot built from it — from the turn itself, or from a reply
  whose prompt it was — has its blobs (JSONL files and manifest, through fsspec) and its
  row deleted. Every adapter trained on such a snapshot, a user's or a group's, has its
  weight directory removed (unloaded first from this process's local engine) and is
  retired with the reason ``training data deleted`` (a rejected one stays rejected). Its
  row stays, with its metrics and lineage and a ``deleted`` entry in its metrics that says
  when its weights went and which snapshot it had been trained on.
* **a user**: all of the above for every group snapshot that pooled one of their turns or
  writing samples; then every adapter the user owns (weights and row) and every snapshot
  they own (blobs and row), their writing samples, and whatever is left under
  ``<datasets>/user/<user id>`` and ``<adapters dir>/<user id>-*`` (files of runs that
  never registered).

Where the files live is deployment configuration (:class:`DerivedFiles`, from settings
through :func:`derived_files`); the purger cannot be built without it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from adapters.config import ModelSettings, TrainingSettings
from adapters.records import AdapterRecord, DatasetSnapshot, Sample
from memory.records.tables import Turn, utcnow

log = logging.getLogger(__name__)

UnloadFn = Callable[[str], object]
"""Drops adapter ``name`` from a serving backend in this process (e.g.
``LocalEngine.unload_adapter``)."""


@dataclass(frozen=True)
class DerivedFiles:
    """Where a deployment keeps the files derived from users' data.

    Attributes:
        adapters_dir: Adapter weights, one directory per adapter name.
        datasets_url: Root of dataset snapshots (local path or fsspec URL).
        storage_options: The fsspec filesystem options of ``datasets_url``.
        unload: Called with an adapter's name before its weights are removed, so a
            backend of this process stops serving it at once.
    """

    adapters_dir: Path | None
    datasets_url: str | None
    storage_options: dict[str, str] = field(default_factory=dict)
    unload: UnloadFn | None = None


@dataclass(frozen=True)
class AdapterPurger:
    """Deletes the training data and adapter weights derived from data being deleted.

    Implements ``memory.deletion.DerivedDataPurger``.
    """

    engine: Engine
    files: DerivedFiles

    def purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        """See :func:`purge_for_deleted_data`."""
        return purge_for_deleted_data(self.engine, self.files, user_id, turn_ids)


@dataclass
class _Purge:
    """One cascade's file operations and counts."""

    files: DerivedFiles
    retired: int = 0
    weights: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.files.storage_options)

    def remove_weights(self, name: str) -> None:
        """Unload adapter ``name`` here, then remove its directory (and staging leftovers)."""
        if self.files.unload is not None:
            self.files.unload(name)
        root = self.files.adapters_dir
        if root is None:
            log.warning("weights of adapter %s kept: no adapters directory is known", name)
            return
        for path in (root / name, *root.glob(f".{name}.*.tmp")):
            shutil.rmtree(path, ignore_errors=True)
        self.weights.append(name)

    def remove_blobs(self, url: str) -> None:
        """Remove a snapshot's directory (files and manifest) through fsspec."""
        fs, path = fsspec.core.url_to_fs(url, **self.options)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def purge_for_deleted_data(
    engine: Engine, files: DerivedFiles, user_id: str, turn_ids: Sequence[str] | None
) -> int:
    """Delete the snapshots and adapter weights derived from data being deleted.

    Owners of a retired promoted
    adapter fall back to their next route target at once (their pointer is cleared).

    Args:
        engine: The record store.
        files: Where the deployment keeps adapter weights and dataset snapshots.
        user_id: Whose data is deleted.
        turn_ids: The deleted turns, or ``None`` when the whole user is deleted.

    Returns:
        How many adapters that could serve (candidate or promoted) were retired or, for a
        deleted user's own adapters, deleted.
    """
    purge = _Purge(files)
    with Session(engine) as session:
        if turn_ids is None:
            _purge_user(session, purge, user_id)
        else:
            turns = set(turn_ids) | set(
                session.exec(select(Turn.id).where(col(Turn.reply_to_id).in_(list(turn_ids))))
            )
            _drop_snapshots(session, purge, _snapshots_using(session, turn_ids=sorted(turns)))
        session.commit()
    if purge.snapshots or purge.weights:
        log.info(
            "deletion of %s data: %d snapshots and weights of %s removed",
            user_id,
            len(purge.snapshots),
            purge.weights,
        )
    return purge.retired


def _snapshots_using(
    session: Session, *, turn_ids: Sequence[str] = (), sample_ids: Sequence[str] = ()
) -> list[DatasetSnapshot]:
    from adapters.dataset_sources import snapshots_using

    return snapshots_using(session, turn_ids=turn_ids, sample_ids=sample_ids)


def _drop_snapshots(session: Session, purge: _Purge, snapshots: Sequence[DatasetSnapshot]) -> None:
    """Retire and strip the adapters trained on ``snapshots``, then delete the snapshots."""
    from adapters.registry import DATA_DELETED, retire

    ids = sorted({s.id for s in snapshots})
    if not ids:
        return
    trained = session.exec(
        select(AdapterRecord).where(col(AdapterRecord.dataset_snapshot_id).in_(ids))
    ).all()
    for record in trained:
        snapshot_id = record.dataset_snapshot_id
        purge.remove_weights(record.name)
        if record.status in ("candidate", "promoted"):
            purge.retired += 1
        if record.status != "rejected":
            retire(session, adapter_id=record.id, reason=DATA_DELETED)
        record.metrics = {
            **record.metrics,
            "deleted": {
                "reason": DATA_DELETED,
                "weights_deleted_at": utcnow().isoformat(),
                "dataset_snapshot_id": snapshot_id,
            },
        }
        record.dataset_snapshot_id = None  # the snapshot row goes below
        session.add(record)
    session.flush()
    _delete_snapshots(session, purge, snapshots)
    session.flush()


def _delete_snapshots(
    session: Session, purge: _Purge, snapshots: Sequence[DatasetSnapshot]
) -> None:
    """Delete the snapshots' rows and blobs (nothing may still reference them)."""
    for snapshot in snapshots:
        purge.remove_blobs(snapshot.url)
        purge.snapshots.append(snapshot.id)
        session.delete(snapshot)


def _purge_user(session: Session, purge: _Purge, user_id: str) -> None:
    """Everything training-related of a user who is being deleted."""
    from adapters.dataset_sources import delete_user_data

    sample_ids = list(session.exec(select(Sample.id).where(Sample.user_id == user_id)))
    turn_ids = list(session.exec(select(Turn.id).where(Turn.user_id == user_id)))
    pooled = [
        s
        for s in _snapshots_using(session, turn_ids=turn_ids, sample_ids=sample_ids)
        if not (s.owner_kind == "user" and s.owner_id == user_id)
    ]
    _drop_snapshots(session, purge, pooled)
    own_adapters = session.exec(
        select(AdapterRecord).where(
            AdapterRecord.owner_kind == "user", AdapterRecord.owner_id == user_id
        )
    ).all()
    for record in own_adapters:
        purge.remove_weights(record.name)
        if record.status in ("candidate", "promoted"):
            purge.retired += 1
        session.delete(record)
    session.flush()
    own_snapshots = session.exec(
        select(DatasetSnapshot).where(
            DatasetSnapshot.owner_kind == "user", DatasetSnapshot.owner_id == user_id
        )
    ).all()
    _delete_snapshots(session, purge, own_snapshots)
    delete_user_data(session, user_id=user_id)
    session.flush()
    _sweep_user_files(purge, user_id)


def _sweep_user_files(purge: _Purge, user_id: str) -> None:
    """Remove what runs left under the user's names without a row (crashed writes)."""
    files = purge.files
    if files.datasets_url is not None:
        purge.remove_blobs(f"{files.datasets_url.rstrip('/')}/user/{user_id}")
    if files.adapters_dir is not None and files.adapters_dir.is_dir():
        for path in (
            *files.adapters_dir.glob(f"{user_id}-*"),
            *files.adapters_dir.glob(f".{user_id}-*"),
        ):
            if files.unload is not None and not path.name.startswith("."):
                files.unload(path.name)
            shutil.rmtree(path, ignore_errors=True)


def derived_files(
    model: ModelSettings, training: TrainingSettings, unload: UnloadFn | None = None
) -> DerivedFiles:
    """The locations from settings; ``unload`` drops an adapter from this process's backend."""
    return DerivedFiles(
        adapters_dir=model.adapters_dir,
        datasets_url=training.datasets_url,
        storage_options=dict(training.storage_options),
        unload=unload,
    )
