"""The placement table: which vLLM replica holds which adapter, shared through the database.

The vllm backend keeps its own view in memory (``VllmBackend.placements``), per process;
every process that publishes (the API, a worker promoting an adapter, the CLI) also writes
what it did here, so an operator sees one table (``GET /v1/admin/placements``, ``attune
adapters placements``) whichever process loaded what. A replica's model list stays the
only truth for "holds" when routing: this table is the record, not the router.

Rows hold adapter names, replica URLs and paths, never user text; an adapter unpublished
(retired or deleted with its user) loses its rows.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from memory.records.tables import UTCDateTime, utcnow

log = logging.getLogger(__name__)

PlacementState = Literal["loaded", "evicted", "failed"]
"""``loaded``: the replica's model list confirmed it; ``evicted``: unloaded to make room
(the next request loads it again); ``failed``: a reload found no adapter at its path."""


class AdapterPlacement(SQLModel, table=True):
    """One adapter on one replica (migration ``0009``)."""

    __tablename__ = "adapter_placements"

    adapter: str = Field(primary_key=True, max_length=200)
    replica: str = Field(primary_key=True, max_length=300)
    state: str = Field(max_length=16)
    path: str = Field(sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class PlacementLog(Protocol):
    """Where the vllm backend reports placement changes."""

    def placed(self, adapter: str, replica: str, state: PlacementState, path: str) -> None:
        """``adapter`` is now in ``state`` on ``replica`` (its files at ``path``)."""
        ...

    def forgotten(self, adapter: str) -> None:
        """``adapter`` was unpublished: it is on no replica, and never served again."""
        ...


class DbPlacementLog:
    """A :class:`PlacementLog` writing the ``adapter_placements`` table.

    A failed write is logged and dropped: serving never waits on the record.
    """

    def __init__(self, engine: Engine) -> None:
        """Write through ``engine`` (the records database, migrated)."""
        self.engine = engine

    def placed(self, adapter: str, replica: str, state: PlacementState, path: str) -> None:
        """Insert or update the row of ``adapter`` on ``replica``."""
        try:
            with Session(self.engine) as session:
                row = session.get(AdapterPlacement, (adapter, replica))
                if row is None:
                    row = AdapterPlacement(adapter=adapter, replica=replica, state=state, path=path)
                row.state, row.path, row.updated_at = state, path, utcnow()
                session.add(row)
                session.commit()
        except sa.exc.SQLAlchemyError:
            log.exception("placement of adapter %s on %s not recorded", adapter, replica)

    def forgotten(self, adapter: str) -> None:
        """Delete every row of ``adapter``."""
        try:
            with Session(self.engine) as session:
                session.execute(
                    sa.delete(AdapterPlacement).where(col(AdapterPlacement.adapter) == adapter)
                )
                session.commit()
        except sa.exc.SQLAlchemyError:
            log.exception("placements of adapter %s not removed", adapter)


def list_placements(engine: Engine, *, adapter: str | None = None) -> list[AdapterPlacement]:
    """The table's rows (of one ``adapter``, if given), by adapter then replica."""
    query = select(AdapterPlacement)
    if adapter is not None:
        query = query.where(AdapterPlacement.adapter == adapter)
    with Session(engine) as session:
        return list(
            session.exec(
                query.order_by(col(AdapterPlacement.adapter), col(AdapterPlacement.replica))
            ).all()
        )
