"""SQLModel tables for training: writing samples, dataset snapshots and adapter versions.

Schema changes go through Alembic (migration ``0007``). ``owner_kind`` + ``owner_id``
name whose data or adapter a row is: a user (``usr_…``) or a user group (``grp_…``); they
carry no foreign key, since an owner may be either. Samples carry none either, so that
deleting a user never trips over them: :func:`adapters.dataset_sources.delete_user_data`
removes them with the rest of the user's training data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from memory.records.tables import UTCDateTime, new_id, utcnow

OwnerKind = Literal["user", "group"]
AdapterStatus = Literal["candidate", "promoted", "rejected", "retired"]
ADAPTER_STATUSES: tuple[AdapterStatus, ...] = ("candidate", "promoted", "rejected", "retired")


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kw)


class Sample(SQLModel, table=True):
    """A writing sample a user uploaded for "write like me".

    Stored as given; scrubbed when a dataset snapshot is built.
    """

    __tablename__ = "samples"
    __table_args__ = (sa.UniqueConstraint("user_id", "content_hash", name="uq_samples_user_hash"),)

    id: str = Field(default_factory=lambda: new_id("smp"), primary_key=True, max_length=40)
    user_id: str = Field(index=True, max_length=40)
    text: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64)
    """SHA-256 of the text: uploading the same sample twice adds it once."""
    created_at: datetime = _ts()


class _OwnedVersion(SQLModel):
    """The leading columns of an owner's versioned rows (snapshots and adapters).

    ``id`` is declared here only to keep it the first column; each table gives it its
    own prefix. ``version`` counts up per owner (a unique constraint in each table).
    """

    id: str = Field(primary_key=True, max_length=40)
    owner_kind: str = Field(max_length=8)
    owner_id: str = Field(max_length=40)
    version: int


class DatasetSnapshot(_OwnedVersion, table=True):
    """One immutable, versioned training dataset of an owner, stored as blobs."""

    __tablename__ = "dataset_snapshots"
    __table_args__ = (
        sa.UniqueConstraint("owner_kind", "owner_id", "version", name="uq_datasets_owner_version"),
        sa.Index("ix_datasets_owner_hash", "owner_kind", "owner_id", "content_hash"),
    )

    id: str = Field(default_factory=lambda: new_id("ds"), primary_key=True, max_length=40)
    content_hash: str = Field(max_length=64)
    url: str = Field(max_length=1000)
    """Where the snapshot's files and ``manifest.json`` live (any fsspec URL)."""
    sft_count: int = 0
    dpo_count: int = 0
    size_bytes: int = 0
    source_turn_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    source_sample_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = _ts()


class AdapterRecord(_OwnedVersion, table=True):
    """One trained adapter version, its lineage, its gate metrics and its status.

    At most one adapter per owner is ``promoted``; promoting another retires it with
    ``status_reason`` ``superseded``, which is what :func:`adapters.registry.rollback`
    looks for.
    """

    __tablename__ = "adapters"
    __table_args__ = (
        sa.UniqueConstraint("owner_kind", "owner_id", "version", name="uq_adapters_owner_version"),
        sa.Index("ix_adapters_owner_status", "owner_kind", "owner_id", "status"),
    )

    id: str = Field(default_factory=lambda: new_id("ad"), primary_key=True, max_length=40)
    kind: str = Field(max_length=8)
    """``sft`` or ``dpo``."""
    name: str = Field(max_length=200, unique=True)
    """The name requests and backends use, e.g. ``usr_…-sft-v3``; a directory under the
    adapters directory."""
    base_model: str = Field(max_length=200)
    dataset_snapshot_id: str | None = Field(
        default=None, foreign_key="dataset_snapshots.id", max_length=40
    )
    parent_id: str | None = Field(default=None, max_length=40)
    """The owner's adapter that was promoted when this one was trained (lineage)."""
    status: str = Field(default="candidate", max_length=16)
    status_reason: str | None = Field(default=None, max_length=1000)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """Training and gate figures, and the gate's reasons."""
    hparams: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _ts()
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
