"""LangGraph checkpointers for thread state: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver


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
            await postgres.setup()
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
