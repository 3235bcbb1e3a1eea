"""Deletion of thread state: no checkpoint may keep a deleted turn, or a deleted user's.

A thread's checkpoints are a history: every earlier checkpoint still holds every message
it held then, and the latest one's per-turn channels (``prompt_messages``,
``system_prompt``, ``memories``, ``reply``, ``scratch``, ``profile_updates`` …) hold text
derived from the turns. Removing a message from the latest state (what the API does at
once, so the next turn no longer sees it) leaves all of that behind. So the deletion
cascade runs :class:`ThreadStatePurger`:

* **a turn**: every thread of the user whose stored checkpoints or pending writes contain
  the turn's id is rewritten as a single checkpoint holding only its ``messages``, minus
  the deleted turns. The per-turn channels go: each run recomputes them.
* **a user**: every thread of the user is deleted (all checkpoints and writes).

It runs as a ``DerivedDataPurger`` after memories are deleted, so no recalled memory of
the deleted turn can be copied into the rewritten state. It opens its own synchronous
connection (the server's checkpointer is asynchronous and lives in another process when a
standalone worker runs the cascade); SQLite connections zero what they delete
(``secure_delete``), and the cascade's last step empties the file's write-ahead log.

A turn running on the same thread while the cascade rewrites it can still write a
checkpoint from state it read before; it holds no deleted message (the API removed it
first), and the next deletion of any of the user's turns rewrites the thread again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from graph.builder import build_turn_graph
from memory.records.tables import Thread
from memory.scrub import secure_delete_pragmas, sqlite_path

log = logging.getLogger(__name__)

# Byte search for an id in each store's serialized state, restricted to given threads.
_SQLITE_FIND = (
    "SELECT thread_id FROM checkpoints WHERE thread_id IN ({q}) AND instr(checkpoint, ?) > 0"
    " UNION SELECT thread_id FROM writes WHERE thread_id IN ({q}) AND instr(value, ?) > 0"
)
_POSTGRES_FIND = (
    "SELECT thread_id FROM checkpoints WHERE thread_id = ANY(%(t)s)"
    " AND strpos(checkpoint::text, %(s)s) > 0"
    " UNION SELECT thread_id FROM checkpoint_blobs WHERE thread_id = ANY(%(t)s)"
    " AND position(%(b)s IN blob) > 0"
    " UNION SELECT thread_id FROM checkpoint_writes WHERE thread_id = ANY(%(t)s)"
    " AND position(%(b)s IN blob) > 0"
)


@dataclass(frozen=True)
class ThreadStatePurger:
    """Removes deleted turns (or a deleted user's threads) from every checkpoint.

    Implements ``memory.deletion.DerivedDataPurger``.

    Attributes:
        engine: The record store (which threads are the user's).
        checkpoint_url: The checkpointer's location, as ``GraphSettings.checkpoint_url``.
    """

    engine: Engine
    checkpoint_url: str

    def purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        """Rewrite the threads holding ``turn_ids``, or delete all (``None``); returns 0."""
        with Session(self.engine) as session:
            threads = list(session.exec(select(Thread.id).where(Thread.user_id == user_id)))
        if not threads:
            return 0
        with _open_saver(self.checkpoint_url) as (saver, find):
            if turn_ids is None:
                for thread_id in threads:
                    saver.delete_thread(thread_id)
                return 0
            doomed = set(turn_ids)
            holding = sorted({t for turn_id in doomed for t in find(threads, turn_id)})
            for thread_id in holding:
                rewrite_thread(saver, thread_id, doomed)
        if holding:
            log.info("thread state of %d threads rewritten without deleted turns", len(holding))
        return 0


def rewrite_thread(
    saver: BaseCheckpointSaver[Any], thread_id: str, doomed: set[str]
) -> list[AnyMessage]:
    """Replace the thread's checkpoints by one holding its messages minus ``doomed`` ids.

    Returns the messages kept. Idempotent: a thread rewritten before is rewritten the same.
    """
    graph = build_turn_graph().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    values = graph.get_state(config).values or {}
    kept = [m for m in values.get("messages", []) if m.id not in doomed]
    saver.delete_thread(thread_id)
    if kept:
        # As ``record`` did it: the thread's next run starts at the beginning, as usual.
        graph.update_state(config, {"messages": kept}, as_node="record")
    return kept


FindFn = Any
"""``(thread_ids, needle) -> list of thread ids`` whose stored state contains ``needle``."""


@contextmanager
def _open_saver(url: str) -> Iterator[tuple[BaseCheckpointSaver[Any], FindFn]]:
    """A synchronous saver on ``url`` and a byte search over its stored state."""
    if url.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(url) as pg:
            pg.setup()

            def find_pg(threads: list[str], needle: str) -> list[str]:
                with pg._cursor() as cur:
                    params = {"t": threads, "s": needle, "b": needle.encode()}
                    cur.execute(_POSTGRES_FIND, params)
                    return [row["thread_id"] for row in cur.fetchall()]

            yield pg, find_pg
        return

    from langgraph.checkpoint.sqlite import SqliteSaver

    path = sqlite_path(url)
    conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, timeout=30)
    try:
        secure_delete_pragmas(conn)
        saver = SqliteSaver(conn)
        saver.setup()

        def find_sqlite(threads: list[str], needle: str) -> list[str]:
            q = ",".join("?" * len(threads))
            args = [*threads, needle.encode(), *threads, needle.encode()]
            with saver.lock:
                rows = conn.execute(_SQLITE_FIND.format(q=q), args).fetchall()
            return [row[0] for row in rows]

        yield saver, find_sqlite
    finally:
        conn.close()
