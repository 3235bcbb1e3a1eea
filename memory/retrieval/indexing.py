"""Writing a user's memories into the vector and full-text indexes (the service's half).

:class:`IndexWriter` is mixed into ``memory.service.MemoryService``: it embeds and upserts
vectors (now, or deferred to a background thread after an import), rewrites the entries of
memories whose keys quote a deleted turn, and removes vectors written for memories deleted
meanwhile, so a deletion and an indexer never leave a vector behind between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from memory.config import MemorySettings
from memory.records.tables import Memory
from memory.retrieval.deferred import DeferredIndexer
from memory.retrieval.keys import stored_keys
from memory.retrieval.protocols import Embedder, IndexEntry, LexicalIndex, VectorIndex


class IndexWriter:
    """Index writes of the memory service; the service sets the attributes below."""

    engine: Engine
    embedder: Embedder
    vectors: VectorIndex
    lexical: LexicalIndex
    settings: MemorySettings
    _deferred: DeferredIndexer

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def index_dense(
        self,
        user_id: str,
        memory_ids: Sequence[str] | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> int:
        """Embed and store vectors for the user's memories (all when ``memory_ids`` is None).

        ``keys`` (memory id → key) are embedded where given, keys rebuilt from the store
        elsewhere. Idempotent (vectors are upserted); memories deleted meanwhile are
        skipped. Returns how many were indexed.
        """
        query = select(Memory).where(Memory.user_id == user_id)
        if memory_ids is not None:
            query = query.where(col(Memory.id).in_(memory_ids))
        with self._session() as session:
            rows = list(session.exec(query).all())
        step = max(self.settings.embed_batch_size * 8, 256)
        for i in range(0, len(rows), step):
            batch = rows[i : i + step]
            given = [keys.get(r.id) for r in batch] if keys is not None else []
            whole = [k for k in given if k is not None]
            self._index(
                user_id, batch, lexical=False, keys=whole if len(whole) == len(batch) else None
            )
            self._drop_vanished(user_id, [r.id for r in batch])
        return len(rows)

    def reindex(self, user_id: str, memory_ids: Sequence[str]) -> int:
        """Index the user's ``memory_ids`` again, keys rebuilt from the store; how many.

        For memories whose index entries quote a turn being deleted (an episodic key holds
        its neighbours' words): the new entries replace the old ones.
        """
        with self._session() as session:
            rows = list(
                session.exec(
                    select(Memory).where(Memory.user_id == user_id, col(Memory.id).in_(memory_ids))
                )
            )
        if rows:
            self._index(user_id, rows)
            self._drop_vanished(user_id, [r.id for r in rows])
        return len(rows)

    def _drop_vanished(self, user_id: str, memory_ids: Sequence[str]) -> None:
        """Remove the vectors of ``memory_ids`` deleted while they were being written.

        A deletion removes rows, then vectors; an indexer that read the rows before and
        upserts after would bring back a deleted memory (or a deleted user's collection).
        Checked after the upsert, so one of the two always removes the vectors last.
        """
        with self._session() as session:
            alive = set(session.exec(select(Memory.id).where(col(Memory.id).in_(memory_ids))))
            left = session.exec(select(Memory.id).where(Memory.user_id == user_id)).first()
        vanished = [m for m in memory_ids if m not in alive]
        if not vanished:
            return
        if left is None:
            self.vectors.delete_user(user_id)  # nothing of theirs is left: no collection either
        else:
            self.vectors.delete(user_id, vanished)

    def dense_backlog(self, user_id: str) -> int:
        """How many of the user's memories have no vector yet (deferred indexing)."""
        with self._session() as session:
            rows = int(
                session.exec(
                    select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
                ).one()
            )
        return max(rows - self.vectors.count(user_id), 0)

    def repair_dense(self, user_id: str) -> int:
        """Write the user's missing vectors, unless this process is writing them already.

        Deferred vectors live in a thread of the importing process; after a crash, the
        durable distill job that follows every import calls this and finishes the work.
        Returns how many memories were (re)indexed: all of the user's, since the vector
        store cannot list which ids it lacks (idempotent upserts).
        """
        if self._deferred.busy(user_id) or self.dense_backlog(user_id) == 0:
            return 0
        return self.index_dense(user_id)

    def wait_dense(self, timeout: float | None = None) -> bool:
        """Wait until deferred dense indexing is done; ``False`` on timeout."""
        return self._deferred.wait(timeout)

    def _index(
        self,
        user_id: str,
        rows: Sequence[Memory],
        *,
        dense: bool = True,
        lexical: bool = True,
        keys: Sequence[str] | None = None,
    ) -> None:
        if keys is None:
            stored = stored_keys(self.engine, rows)
            keys = [stored[r.id] for r in rows]
        entries = [
            IndexEntry(r.id, key, r.kind, r.created_at.timestamp())
            for r, key in zip(rows, keys, strict=True)
        ]
        if dense:
            # The text's vector, and the key's where it says more (episodic turns):
            # search takes the better of the two (``search.dense_scores``).
            keyed = [i for i, (r, key) in enumerate(zip(rows, keys, strict=True)) if key != r.text]
            vectors = self.embedder.embed([r.text for r in rows] + [keys[i] for i in keyed])
            self.vectors.upsert(user_id, entries, vectors[: len(rows)])
            if keyed:
                self.vectors.upsert_keys(user_id, [entries[i] for i in keyed], vectors[len(rows) :])
        if lexical:
            self.lexical.upsert(user_id, entries)
