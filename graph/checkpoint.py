"""LangGraph checkpointers for thread state: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from memory.records.db import MIGRATION_LOCK


@asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Open the checkpointer named by ``url`` and set up its tables.

    ``postgresql://…`` uses the Postgres checkpointer; anything else is a SQLite file path
    (``:memory:`` for tests).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        # A pool, not one connection: a PostgreSQL restart cuts a connection for good, and
        # the pool's check replaces it, so turns recover without restarting the server
        # (during the outage, a pool timeout becomes a 503).
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=8,
            timeout=5,
            check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        )
        await pool.open()
        try:
            postgres = AsyncPostgresSaver(pool)
            await _setup_alone(url, postgres)
            yield postgres
        finally:
            await pool.close()
        return

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = url.removeprefix("sqlite:///")
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        # Thread state deleted through this connection must not stay in free pages.
        await saver.conn.execute("PRAGMA secure_delete=ON")
        await saver.setup()
        yield saver


async def _setup_alone(url: str, saver: Any) -> None:
    """Run ``saver.setup()`` while no other process does (they would race to create types).

    The lock is polled with ``pg_try_advisory_lock``, never waited on in one statement: the
    setup builds an index ``CONCURRENTLY``, which waits for every running statement,
    including a blocked ``pg_advisory_lock`` (a deadlock PostgreSQL does not detect).
    """
    import asyncio

    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as lock:
        while True:
            got = await (
                await lock.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK,))
            ).fetchone()
            if got is not None and got[0]:
                break
            await asyncio.sleep(0.2)
        try:
            await saver.setup()
        finally:
            await lock.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
