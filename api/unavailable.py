"""Faults of the stores under the API, as statuses a client can act on.

A database that does not answer (restarting, unreachable, its pool exhausted), or a vector
index server a request cannot do without, is a 503 with ``Retry-After``: the request did
nothing, and the same request later may succeed. A full
disk is a 507 naming the disk: retrying will not help until someone frees space. Anything
else stays an internal error (``api.errors``).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import sqlalchemy.exc as sa_exc

from memory.retrieval.dense_health import vector_index_down

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5
"""``Retry-After`` of a 503 for a database that does not answer (a restart takes seconds)."""

DATABASE_DOWN = (
    "the database is not answering (restarting or unreachable); nothing was recorded. "
    "Retry after the Retry-After header; if it persists, check the database server"
)
VECTORS_DOWN = (
    "the vector index (the Chroma server) is not answering, and this request needs it; "
    "nothing was changed. Retry after the Retry-After header"
)
DISK_FULL = (
    "the server's disk is full: the data directory cannot be written; nothing was recorded. "
    "Free space on the disk that holds the data directory, then retry"
)


@dataclass(frozen=True)
class Unavailable:
    """How to answer a store fault: status, message, ``Retry-After`` (``None``: none)."""

    status: int
    message: str
    retry_after_s: int | None
    cause: str
    """``database``, ``vectors`` or ``disk``: the log's word."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, e.__cause__, e.__context__]


_FULL_WORDS = ("database or disk is full", "No space left on device", "Disk quota exceeded")
"""What SQLite, and stores that wrap their errors (Chroma), say of a full disk."""


def _disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(e, psycopg.errors.DiskFull):
        return True
    return any(words in str(e) for words in _FULL_WORDS)


def _database_down(e: BaseException) -> bool:
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # the pool waited for a connection in vain
    if isinstance(e, psycopg.errors.DiskFull):
        return False
    # psycopg's OperationalError: refused or lost connections, a server shutting down,
    # "the connection is closed" (a checkpointer connection the restart cut).
    return isinstance(e, psycopg.OperationalError | psycopg.InterfaceError)


def classify(exc: BaseException) -> Unavailable | None:
    """The answer for ``exc`` if it is a store fault, else ``None``."""
    chain = list(_chain(exc))
    if any(_disk_full(e) for e in chain):
        return Unavailable(507, DISK_FULL, None, "disk")
    if any(_database_down(e) for e in chain):
        return Unavailable(503, DATABASE_DOWN, DATABASE_RETRY_AFTER_S, "database")
    # Search and writes go on without it (``memory.retrieval.dense_health``); what cannot
    # (deleting a memory must delete its vectors) answers 503.
    if vector_index_down(exc) and any(_raised_in_chroma(e) for e in chain):
        return Unavailable(503, VECTORS_DOWN, DATABASE_RETRY_AFTER_S, "vectors")
    return None


def _raised_in_chroma(e: BaseException) -> bool:
    """Whether ``e`` passed through Chroma's client (not some other HTTP call that failed)."""
    tb = e.__traceback__
    while tb is not None:
        if f"{os.sep}chromadb{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
