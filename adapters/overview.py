"""What a user's adapters look like to them: versions, lineage, and what serves them now.

Read-only, over a SQLModel session. ``serving`` follows the turn graph's own routing rule
(``graph.routing.choose_route`` is applied by the caller with the backend's availability):
the user's promoted adapter, else their group's, else the base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from adapters import registry
from adapters.records import AdapterRecord, DatasetSnapshot
from memory.records.tables import User, UserGroup


@dataclass
class UserAdapters:
    """A user's adapters and their group's, with the pointers routing reads."""

    user_id: str
    group_id: str | None
    group_name: str | None
    user_adapter: str | None
    """``User.adapter_name``: the user's promoted adapter."""
    group_adapter: str | None
    """``UserGroup.adapter_name``: the group's promoted adapter."""
    adapters: list[AdapterRecord] = field(default_factory=list)
    group_adapters: list[AdapterRecord] = field(default_factory=list)
    snapshots: dict[str, DatasetSnapshot] = field(default_factory=dict)
    """The dataset snapshots the listed adapters were trained on, by id."""

    def by_name(self, name: str | None) -> AdapterRecord | None:
        """The listed adapter called ``name``."""
        for record in (*self.adapters, *self.group_adapters):
            if record.name == name:
                return record
        return None


def user_adapters(session: Session, *, user_id: str) -> UserAdapters | None:
    """The user's and their group's adapters, newest first; ``None`` for an unknown user."""
    user = session.get(User, user_id)
    if user is None:
        return None
    group = session.get(UserGroup, user.group_id) if user.group_id else None
    out = UserAdapters(
        user_id=user.id,
        group_id=group.id if group else None,
        group_name=group.name if group else None,
        user_adapter=user.adapter_name,
        group_adapter=group.adapter_name if group else None,
        adapters=list(registry.list_adapters(session, owner_kind="user", owner_id=user.id)),
        group_adapters=list(
            registry.list_adapters(session, owner_kind="group", owner_id=group.id) if group else []
        ),
    )
    ids = {r.dataset_snapshot_id for r in (*out.adapters, *out.group_adapters)}
    wanted = [i for i in ids if i]
    if wanted:
        out.snapshots = {
            s.id: s
            for s in session.exec(
                select(DatasetSnapshot).where(col(DatasetSnapshot.id).in_(wanted))
            ).all()
        }
    return out


def adapter_view(record: AdapterRecord, snapshot: DatasetSnapshot | None) -> dict[str, Any]:
    """One adapter as JSON-ready fields: status, metrics, gate reasons, lineage, dataset."""
    gate = record.metrics.get("gate", {})
    return {
        "id": record.id,
        "name": record.name,
        "owner_kind": record.owner_kind,
        "owner_id": record.owner_id,
        "version": record.version,
        "kind": record.kind,
        "base_model": record.base_model,
        "status": record.status,
        "status_reason": record.status_reason,
        "gate_passed": gate.get("passed"),
        "gate_reasons": list(gate.get("reasons", [])),
        "metrics": record.metrics,
        "hparams": record.hparams,
        "parent_id": record.parent_id,
        "dataset": (
            {
                "id": snapshot.id,
                "version": snapshot.version,
                "content_hash": snapshot.content_hash,
                "sft_count": snapshot.sft_count,
                "dpo_count": snapshot.dpo_count,
                "size_bytes": snapshot.size_bytes,
                "created_at": snapshot.created_at,
            }
            if snapshot is not None
            else None
        ),
        "created_at": record.created_at,
        "promoted_at": record.promoted_at,
        "retired_at": record.retired_at,
    }
