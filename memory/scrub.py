"""Below the row level: what a deleted row leaves in SQLite files, and removing it.

A ``DELETE`` in SQLite marks space free; the bytes stay in the page (and in the freelist)
until reused, the write-ahead log keeps older copies of every page it wrote, and an FTS5
index keeps deleted terms in its segments until they are merged. A deletion cascade is
done only when those copies are gone too, so it ends with :class:`StorageScrubber`:

* every connection Attune opens to its own SQLite files sets ``secure_delete`` (see
  :func:`secure_delete_pragmas`), so deleted cells and freed pages are zeroed as they go;
* FTS5 indexes are ``optimize``-d (all segments merged into one, deleted terms dropped);
* files written by connections Attune does not own (Chroma's embedded store) are
  ``VACUUM``-ed: rebuilt without their free pages;
* every write-ahead log is checkpointed with ``TRUNCATE``: its pages are copied into the
  database (where secure deletion already zeroed what was deleted) and the file is emptied.

PostgreSQL, a Chroma server and Redis are outside these files; their deleted rows are
not readable through any query, which is what a deletion there promises.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WAL_RETRIES = 20
"""A ``TRUNCATE`` checkpoint fails while another connection reads; it is retried this
often (0.1 s apart) before the cascade gives up on emptying the log this time."""


def secure_delete_pragmas(dbapi_conn: Any) -> None:
    """Make a SQLite connection zero what it deletes (``PRAGMA secure_delete``).

    The setting belongs to the connection, not the file: every connection that deletes
    must set it, or its deletions leave their bytes in free space.
    """
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


@dataclass(frozen=True)
class SqliteFile:
    """A SQLite file a deletion must scrub.

    Attributes:
        path: The database file (its ``-wal`` beside it).
        fts_tables: FTS5 tables to ``optimize``.
        vacuum: Rebuild the file (for files another library deletes from without
            ``secure_delete``).
        statements: Run first, each in its own transaction (a library's own clean-up).
    """

    path: Path
    fts_tables: Sequence[str] = ()
    vacuum: bool = False
    statements: Sequence[str] = ()


def scrub_sqlite(file: SqliteFile) -> bool:
    """Merge FTS segments, optionally vacuum, and empty the WAL of ``file``.

    Missing files are skipped (nothing to scrub). Returns whether the WAL was emptied
    (``False`` when readers kept it busy for every retry; the next cascade tries again).
    """
    if not file.path.exists():
        return True
    conn = sqlite3.connect(str(file.path), timeout=30, isolation_level=None)
    try:
        secure_delete_pragmas(conn)
        for statement in file.statements:
            try:
                conn.execute(statement)
            except sqlite3.OperationalError as exc:  # e.g. a store not written to yet
                log.debug("scrub of %s: %s", file.path, exc)
        for table in file.fts_tables:
            if _has_table(conn, table):
                # Merges every segment into one; terms of deleted rows are dropped.
                conn.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")
        if file.vacuum:
            conn.execute("VACUUM")
        return _truncate_wal(conn, file.path)
    finally:
        conn.close()


# Chroma's embedded store logs every write (``embeddings_queue``: id, vector, metadata
# with the document) and prunes the log only once every segment has persisted it. An
# add/update/upsert (operations 0-2) followed by a delete (3) of the same id replays to
# nothing, so it can go at once; so can one followed by a full upsert (2, with a vector)
# of the same id — ``memory.retrieval.vectors`` always upserts every field, so the later
# entry alone replays to the same record (a re-keyed memory's old vector goes); and so can
# the log of a collection that no longer exists.
_CHROMA_LOG_PURGE = (
    "DELETE FROM embeddings_queue WHERE operation != 3 AND EXISTS ("
    " SELECT 1 FROM embeddings_queue AS d WHERE d.operation = 3 AND d.topic ="
    " embeddings_queue.topic AND d.id = embeddings_queue.id AND d.seq_id >"
    " embeddings_queue.seq_id)",
    "DELETE FROM embeddings_queue WHERE operation IN (0, 2) AND EXISTS ("
    " SELECT 1 FROM embeddings_queue AS u WHERE u.operation = 2 AND u.vector IS NOT NULL"
    " AND u.topic = embeddings_queue.topic AND u.id = embeddings_queue.id"
    " AND u.seq_id > embeddings_queue.seq_id)",
    "DELETE FROM embeddings_queue WHERE NOT EXISTS ("
    " SELECT 1 FROM collections AS c WHERE embeddings_queue.topic LIKE '%/' || c.id)",
)


def chroma_embedded(path: Path) -> SqliteFile:
    """The SQLite file of Chroma's ``PersistentClient`` at ``path``, and how to scrub it.

    Chroma deletes without ``secure_delete`` and keeps its log: the log of deleted entries
    is purged, its full-text index merged, and the file rebuilt (``VACUUM``). Its vector
    files hold embeddings and ids, never text.
    """
    return SqliteFile(
        path / "chroma.sqlite3",
        fts_tables=("embedding_fulltext_search",),
        vacuum=True,
        statements=_CHROMA_LOG_PURGE,
    )


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return row is not None


def _truncate_wal(conn: sqlite3.Connection, path: Path) -> bool:
    for _ in range(WAL_RETRIES):
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        time.sleep(0.1)
    log.warning("the write-ahead log of %s is busy; it is emptied by a later deletion", path)
    return False


@dataclass(frozen=True)
class StorageScrubber:
    """The last step of every deletion cascade: scrub the deployment's SQLite files.

    Implements ``memory.deletion.DerivedDataPurger``; it removes no rows itself, so it
    takes its arguments only to fit the protocol.

    Attributes:
        files: The SQLite files of this deployment (record store, thread state, Chroma).
    """

    files: Sequence[SqliteFile] = field(default_factory=tuple)

    def purge(self, user_id: str, turn_ids: Sequence[str] | None) -> int:
        """Scrub every file; retires no adapter (returns 0)."""
        for file in self.files:
            scrub_sqlite(file)
        return 0


def sqlite_path(url: str | None) -> Path | None:
    """The file of a SQLite URL or path (``None`` for other databases or ``:memory:``)."""
    if url is None or url.startswith(("postgresql", "postgres://")):
        return None
    path = url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") or "://" in path else Path(path)
