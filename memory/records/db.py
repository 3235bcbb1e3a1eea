"""Database engines and schema migrations for the record store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from memory.config import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"


def make_engine(settings: DatabaseSettings) -> Engine:
    """Create the engine for ``settings.url`` (SQLite gets WAL, a busy timeout and FKs)."""
    if settings.url is None:
        raise ValueError("database url is not set")
    url = sa.make_url(settings.url)
    # Statement parameters hold users' text: an error's message (logged, kept on a failed
    # job) must not quote them.
    kwargs: dict[str, Any] = {"echo": settings.echo, "future": True, "hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_size"] = settings.pool_size
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the server read while a worker writes; FKs are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Deleted rows must not stay readable in free space (a deletion is a promise).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine``, independent of the working directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


MIGRATION_LOCK = 0x61747475  # "attu": the advisory lock every process migrates under
"""Several processes starting on one empty PostgreSQL database (two API replicas, the
workers) would each create the tables; under this lock one migrates and the others then
find the schema current."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; serialized across processes)."""
    if engine.dialect.name != "postgresql":  # SQLite: one process owns the file
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or ``None`` when it is empty."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def open_engine(settings: DatabaseSettings) -> Engine:
    """Create the engine and migrate the schema to the latest revision."""
    engine = make_engine(settings)
    upgrade(engine)
    return engine
