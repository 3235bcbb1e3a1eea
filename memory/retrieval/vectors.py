"""Dense vectors in Chroma: one collection per user, embedded or on a Chroma server.

Vectors are computed by our ``Embedder`` and handed over; collections have no Chroma
embedding function (the default one would download a model). One collection per user
makes the per-user boundary structural: a query runs inside that user's collection, so
another user's entries cannot come back whatever the filter says.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from memory.retrieval.protocols import IndexEntry, IndexHit

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# Collection names: 3-63 characters of [a-zA-Z0-9._-] (Chroma 1.x allows up to 512; 63 is
# the older, stricter rule), starting and ending alphanumeric. Ids that fit are kept
# readable; any other id is hashed. The two prefixes differ, so the schemes never collide.
_PLAIN_PREFIX = "attune-u-"
_HASHED_PREFIX = "attune-h-"
_KEYS_PREFIX = "attune-k-"  # key vectors (``upsert_keys``): always hashed, fits 63
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{0,53}[A-Za-z0-9]")

T = TypeVar("T")


class VectorSettings(BaseModel):
    """Where vectors live.

    ``url`` ``None`` keeps them in an embedded Chroma at ``path`` (filled by the root
    settings from the data directory); ``http://host:port`` uses a Chroma server.
    """

    url: str | None = None
    path: Path | None = None


def collection_name(user_id: str, *, keys: bool = False) -> str:
    """The Chroma collection holding ``user_id``'s vectors, or key vectors (stable, injective)."""
    if keys:
        return _KEYS_PREFIX + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:48]
    if _PLAIN_ID.fullmatch(user_id):
        return _PLAIN_PREFIX + user_id
    return _HASHED_PREFIX + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:48]


class ChromaVectorIndex:
    """A ``VectorIndex`` on a Chroma client, one cosine-space collection per user.

    Entries carry ``kind`` and ``created_at`` as metadata; the score of a hit is
    ``1 - cosine distance``. Collection handles are cached; the cache is safe to use from
    several threads, and a handle whose collection another process deleted is dropped
    and looked up again.
    """

    def __init__(self, client: ClientAPI) -> None:
        """Wrap ``client`` (``chromadb.PersistentClient`` or ``chromadb.HttpClient``)."""
        self._client = client
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()
        self._batch: int | None = None

    def _max_batch(self) -> int:
        # Chroma refuses larger writes; asking a server costs a request, so ask once.
        if self._batch is None:
            self._batch = max(1, self._client.get_max_batch_size())
        return self._batch

    def upsert(
        self, user_id: str, entries: Sequence[IndexEntry], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Add or replace ``entries`` (same order as ``vectors``) for ``user_id``."""
        self._upsert(user_id, entries, vectors, keys=False)

    def upsert_keys(
        self, user_id: str, entries: Sequence[IndexEntry], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Add or replace key vectors for ``entries``, in the user's second collection."""
        self._upsert(user_id, entries, vectors, keys=True)

    def _upsert(
        self,
        user_id: str,
        entries: Sequence[IndexEntry],
        vectors: Sequence[Sequence[float]],
        *,
        keys: bool,
    ) -> None:
        if len(entries) != len(vectors):
            raise ValueError(f"{len(entries)} entries but {len(vectors)} vectors")
        if not entries:
            return
        # The last entry for an id wins, as if the upserts ran one by one.
        latest = {e.memory_id: (e, v) for e, v in zip(entries, vectors, strict=True)}
        ids = list(latest)
        embeddings: Any = [[float(x) for x in v] for _, v in latest.values()]
        metadatas: Any = [
            {"kind": e.kind, "created_at": float(e.created_at)} for e, _ in latest.values()
        ]

        def run(col: Collection) -> None:
            step = self._max_batch()
            for i in range(0, len(ids), step):
                col.upsert(
                    ids=ids[i : i + step],
                    embeddings=embeddings[i : i + step],
                    metadatas=metadatas[i : i + step],
                )

        self._with_collection(user_id, run, create=True, keys=keys)

    def query_keys(
        self, user_id: str, vector: Sequence[float], *, k: int, kinds: Sequence[str] | None = None
    ) -> list[IndexHit]:
        """As :meth:`query`, over the key vectors."""
        return self.query(user_id, vector, k=k, kinds=kinds, keys=True)

    def query(
        self,
        user_id: str,
        vector: Sequence[float],
        *,
        k: int,
        kinds: Sequence[str] | None = None,
        keys: bool = False,
    ) -> list[IndexHit]:
        """The ``k`` nearest of the user's entries (optionally only ``kinds``), best first.

        A user with nothing indexed, ``k < 1`` or an empty ``kinds`` gives ``[]``;
        ``keys`` searches the key vectors instead.
        """
        if k < 1 or (kinds is not None and not kinds):
            return []
        where: Any = {"kind": {"$in": list(kinds)}} if kinds is not None else None
        query_embeddings: Any = [[float(x) for x in vector]]

        def run(col: Collection) -> list[IndexHit]:
            # Chroma 1.x returns fewer than n_results when the collection is smaller.
            res = col.query(
                query_embeddings=query_embeddings,
                n_results=k,
                where=where,
                include=["distances"],
            )
            ids = res["ids"][0] if res["ids"] else []
            distances = res["distances"][0] if res["distances"] else []
            return [
                IndexHit(memory_id=i, score=1.0 - float(d))
                for i, d in zip(ids, distances, strict=True)
            ]

        return self._with_collection(user_id, run, create=False, keys=keys) or []

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> None:
        """Remove entries and their key vectors (unknown ids are ignored)."""
        if not memory_ids:
            return
        ids = list(dict.fromkeys(memory_ids))

        def run(col: Collection) -> None:
            step = self._max_batch()
            for i in range(0, len(ids), step):
                col.delete(ids=ids[i : i + step])

        self._with_collection(user_id, run, create=False)
        self._with_collection(user_id, run, create=False, keys=True)

    def delete_user(self, user_id: str) -> None:
        """Remove everything indexed for ``user_id`` (both its collections)."""
        from chromadb.errors import NotFoundError

        for name in (collection_name(user_id), collection_name(user_id, keys=True)):
            with self._lock:
                self._collections.pop(name, None)
                with contextlib.suppress(NotFoundError):
                    self._client.delete_collection(name)

    def count(self, user_id: str) -> int:
        """How many entries ``user_id`` has (key vectors not counted)."""
        return self._with_collection(user_id, lambda col: col.count(), create=False) or 0

    def _with_collection(
        self, user_id: str, fn: Callable[[Collection], T], *, create: bool, keys: bool = False
    ) -> T | None:
        """Run ``fn`` on the user's collection; ``None`` when it is absent and not created.

        A cached handle may name a collection deleted by another process (a worker
        deleting a user): then the handle is dropped and the lookup done once more.
        """
        from chromadb.errors import NotFoundError

        for attempt in range(2):
            col = self._collection(user_id, create=create, keys=keys)
            if col is None:
                return None
            try:
                return fn(col)
            except NotFoundError:
                with self._lock:
                    if self._collections.get(col.name) is col:
                        del self._collections[col.name]
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _collection(self, user_id: str, *, create: bool, keys: bool) -> Collection | None:
        from chromadb.errors import NotFoundError

        name = collection_name(user_id, keys=keys)
        col = self._collections.get(name)
        if col is not None:
            return col
        with self._lock:
            col = self._collections.get(name)
            if col is not None:
                return col
            if create:
                col = self._client.get_or_create_collection(
                    name,
                    # ef_search 100 (Chroma's default is 10): at 10 the graph search
                    # missed near neighbours an exact search finds, about 0.01 of
                    # LoCoMo recall@10, for under a millisecond at 10k vectors.
                    configuration={
                        "hnsw": {"space": "cosine", "ef_search": 100, "ef_construction": 200}
                    },
                    metadata={"user_id": user_id},
                    embedding_function=None,
                )
            else:
                try:
                    col = self._client.get_collection(name, embedding_function=None)
                except NotFoundError:
                    # Not cached: the user may get a collection from another process later.
                    return None
            self._collections[name] = col
            return col


def make_client(settings: VectorSettings) -> ClientAPI:
    """Open the Chroma client ``settings`` name, with anonymized telemetry off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.url is None:
        if settings.path is None:
            raise ValueError("vector settings need a path for the embedded Chroma")
        settings.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.path), settings=chroma_settings)
    parts = urlsplit(settings.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"vector url must be http(s)://host:port, got {settings.url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 8000)
    return chromadb.HttpClient(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "https",
        settings=chroma_settings,
    )


def make_vector_index(settings: VectorSettings) -> ChromaVectorIndex:
    """The vector index ``settings`` describe: embedded Chroma or a Chroma server."""
    return ChromaVectorIndex(make_client(settings))
