"""Fixtures for tests against real services: PostgreSQL (started if not answering)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine

from memory.config import DatabaseSettings
from memory.records import db

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_answers() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _start_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*"))
    if not versions:
        pytest.fail("PostgreSQL is not answering on 127.0.0.1:5432 and is not installed here")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )
    for _ in range(30):
        if _pg_answers():
            return
        time.sleep(1)
    pytest.fail("PostgreSQL did not start; see /var/log/postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a running PostgreSQL (started when it is not answering)."""
    if not _pg_answers():
        _start_postgres()
    return PG_ADMIN_URL


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; yields its ``postgresql://`` URL."""
    name = f"attune_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite file or PostgreSQL database, migrated to the head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'attune.db'}"
    else:
        url = request.getfixturevalue("postgres_db").replace(
            "postgresql://", "postgresql+psycopg://"
        )
    eng = db.make_engine(DatabaseSettings(url=url))
    db.upgrade(eng)
    yield eng
    eng.dispose()
