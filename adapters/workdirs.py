"""Deletion of training work directories left by failed or interrupted runs.

A run works in ``<work dir>/<run id>`` (``adapters.jobs.run_training``): its reserved
snapshot (``state.json``) and the trainer's checkpoints, whose optimizer and tokenizer
files may hold the training text. A finished run removes its directory; a run that failed
or was killed leaves it, to be resumed. Once the snapshot it trains on is deleted (the
:class:`adapters.deletion.AdapterPurger` deletes every snapshot built from deleted data),
the run can never resume, and its directory is a copy of deleted data.

:class:`WorkDirPurger` runs after the ``AdapterPurger`` in both cascades and removes
every run directory whose snapshot row is gone, and, for a deleted user, every run
directory of one of their jobs.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from adapters.records import DatasetSnapshot
from memory.records.jobs import Job

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


@dataclass(frozen=True)
class WorkDirPurger:
    """Removes training work directories built from deleted data.

    Implements ``memory.deletion.DerivedDataPurger``.

    Attributes:
        engine: The record store (snapshots and jobs).
        work_dir: ``settings.training.work_dir``; ``None``: nothing to do.
    """

    engine: Engine
    work_dir: Path | None

    def purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        """Remove orphaned run directories (and all of a deleted user's); returns 0."""
        root = self.work_dir
        if root is None or not root.is_dir():
            return 0
        runs = [p for p in root.iterdir() if p.is_dir()]
        with Session(self.engine) as session:
            users_jobs: set[str] = set()
            if turn_ids is None:
                users_jobs = {
                    job.id
                    for job in session.exec(
                        select(Job).where(col(Job.id).in_([p.name for p in runs]))
                    )
                    if job.payload.get("owner_kind") == "user"
                    and job.payload.get("owner_id") == user_id
                }
            snapshot_of = {p: _snapshot_id(p) for p in runs}
            named = [s for s in snapshot_of.values() if s is not None]
            alive = set(
                session.exec(select(DatasetSnapshot.id).where(col(DatasetSnapshot.id).in_(named)))
            )
        removed = [
            p
            for p, snapshot_id in snapshot_of.items()
            if p.name in users_jobs or (snapshot_id is not None and snapshot_id not in alive)
        ]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        if n := len(removed):
            log.info("deletion of %s data: %d training work directories removed", user_id, n)
        return 0


def _snapshot_id(run_dir: Path) -> str | None:
    """The snapshot a run reserved (``None``: no readable state, nothing reserved yet)."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = state.get("snapshot_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None
