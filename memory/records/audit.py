"""The audit log: who did what to which ids, and when. Never content.

One row per audited request (``api.audit`` decides which): admin actions, deletions,
adapter promotions and rollbacks. Rows have no foreign keys, so the record of a user's
deletion outlives the user; they hold ids, a route template and a status, which name what
was done without holding anything the user wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, func, select

from memory.records.tables import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """One audited action."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    """Increasing: the log's order."""
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    actor: str = Field(max_length=16)
    """``admin``, ``user`` or ``anonymous`` (a refused key)."""
    user_id: str | None = Field(default=None, max_length=40)
    """The acting key's user (``None`` for the admin)."""
    key_id: str | None = Field(default=None, max_length=40)
    """The acting stored key's id; ``None`` for the configured admin key or none at all."""
    method: str = Field(max_length=8)
    route: str = Field(max_length=200)
    """The route template (``/v1/users/{user_id}``), never the raw path or query."""
    target: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """The path's ids (``{"user_id": "usr_…"}``)."""
    status: int
    """The response's HTTP status: refusals are audited too."""
    request_id: str | None = Field(default=None, max_length=128)


def record(engine: Engine, *, entry: AuditEntry) -> AuditEntry:
    """Store ``entry`` and return it with its id."""
    with Session(engine) as session:
        session.add(entry)
        session.commit()
        session.refresh(entry)
        return entry


def page(
    engine: Engine, *, limit: int = 100, offset: int = 0, before: int | None = None
) -> tuple[list[AuditEntry], int]:
    """A page of entries, the newest first, and how many match in all.

    ``before``: only entries older than that id; a stable cursor while the log grows
    (reading the log is audited too, so offsets shift between pages).
    """
    query = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if before is not None:
        query = query.where(col(AuditEntry.id) < before)
        count = count.where(col(AuditEntry.id) < before)
    query = query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)
    with Session(engine) as session:
        total = session.exec(count).one()
        return list(session.exec(query).all()), int(total)
