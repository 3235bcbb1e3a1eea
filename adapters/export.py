"""What training holds about a user, for the export (``memory.export.UserExport``).

* ``samples``: the writing samples they uploaded, as stored;
* ``dataset_snapshots``: every snapshot built from their data. Their own come whole: the
  row, the ``manifest`` read from the snapshot's blobs (content hash, counts, sizes, source
  ids) and its ``records`` (the scrubbed SFT examples and DPO pairs). A group's snapshot
  that pooled their turns or samples comes as its row alone, its source ids cut down to
  the user's own (its records and the other ids are other members');
* ``adapters``: every adapter trained on one of those snapshots or owned by the user, with
  its lineage (parent, snapshot), status, metrics and hyperparameters.

Nothing of another user's leaves: group rows are listed only for what the user's data
went into, and without the other members' ids.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import fsspec
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from adapters.dataset_sources import snapshots_using
from adapters.records import AdapterRecord, DatasetSnapshot, Sample
from memory.records.tables import Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingExport:
    """Implements ``memory.export.ExportSection`` for samples, snapshots and adapters.

    Attributes:
        engine: The record store.
        storage_options: The fsspec options of the datasets' location.
    """

    engine: Engine
    storage_options: dict[str, str] = field(default_factory=dict)

    def export(self, user_id: str) -> dict[str, Any]:
        """The user's samples, the snapshots built from their data, the adapters on them."""
        with Session(self.engine) as session:
            samples = session.exec(
                select(Sample).where(Sample.user_id == user_id).order_by(col(Sample.created_at))
            ).all()
            sample_ids = {s.id for s in samples}
            turn_ids = set(session.exec(select(Turn.id).where(Turn.user_id == user_id)))
            own = session.exec(
                select(DatasetSnapshot).where(
                    DatasetSnapshot.owner_kind == "user", DatasetSnapshot.owner_id == user_id
                )
            ).all()
            snapshots = {s.id: s for s in own}
            for pooled in snapshots_using(
                session, turn_ids=sorted(turn_ids), sample_ids=sorted(sample_ids)
            ):
                snapshots.setdefault(pooled.id, pooled)
            adapters = session.exec(
                select(AdapterRecord)
                .where(
                    or_(
                        col(AdapterRecord.dataset_snapshot_id).in_(list(snapshots)),
                        (col(AdapterRecord.owner_kind) == "user")
                        & (col(AdapterRecord.owner_id) == user_id),
                    )
                )
                .order_by(col(AdapterRecord.created_at))
            ).all()
            return {
                "samples": [s.model_dump(mode="json") for s in samples],
                "dataset_snapshots": [
                    self._snapshot(s, user_id, turn_ids, sample_ids)
                    for s in sorted(snapshots.values(), key=lambda s: (s.created_at, s.id))
                ],
                "adapters": [a.model_dump(mode="json") for a in adapters],
            }

    def _snapshot(
        self, snapshot: DatasetSnapshot, user_id: str, turn_ids: set[str], sample_ids: set[str]
    ) -> dict[str, Any]:
        row: dict[str, Any] = snapshot.model_dump(mode="json")
        if snapshot.owner_kind == "user" and snapshot.owner_id == user_id:
            row["manifest"] = self._read(snapshot.url, "manifest.json")
            row["records"] = {
                kind: [json.loads(line) for line in (self._read(snapshot.url, name) or [])]
                for kind, name in (("sft", "sft.jsonl"), ("dpo", "dpo.jsonl"))
            }
            return row
        row["source_turn_ids"] = [t for t in snapshot.source_turn_ids if t in turn_ids]
        row["source_sample_ids"] = [s for s in snapshot.source_sample_ids if s in sample_ids]
        return row

    def _read(self, url: str, name: str) -> Any:
        """A snapshot file: JSON for ``.json``, lines for ``.jsonl``; ``None`` if unreadable."""
        try:
            fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
            with fs.open(f"{path.rstrip('/')}/{name}", "r", encoding="utf-8") as f:
                return json.load(f) if name.endswith(".json") else f.read().splitlines()
        except (OSError, ValueError) as exc:
            log.warning("%s of snapshot at %s not exported: %s", name, url, exc)
            return None
