"""Protocols for the indexes behind hybrid memory retrieval.

A memory's text lives in the record store (``memories`` table); these indexes hold what
is needed to find it: vectors (``VectorIndex``) and terms (``LexicalIndex``). Every call
names the user, and an implementation must never return another user's entries — the
per-user boundary is enforced here, inside the stores, not by callers. Each protocol has a
contract suite in ``tests/contract`` that every implementation passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class IndexEntry:
    """One memory to index."""

    memory_id: str
    text: str
    kind: str
    """``episodic``, ``summary``, ``fact``, ``preference`` or ``instruction``."""
    created_at: float
    """Unix seconds; lets an index break ties or filter by time."""


@dataclass(frozen=True)
class IndexHit:
    """A memory an index found, best first; ``score`` is larger for better matches."""

    memory_id: str
    score: float


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    dimension: int
    model_id: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` (batched internally); returns one vector per text, in order."""
        ...


@runtime_checkable
class VectorIndex(Protocol):
    """Dense vectors per user."""

    def upsert(
        self, user_id: str, entries: Sequence[IndexEntry], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Add or replace ``entries`` (same order as ``vectors``) for ``user_id``."""
        ...

    def query(
        self, user_id: str, vector: Sequence[float], *, k: int, kinds: Sequence[str] | None = None
    ) -> list[IndexHit]:
        """The ``k`` nearest of the user's entries (optionally only ``kinds``), best first."""
        ...

    def upsert_keys(
        self, user_id: str, entries: Sequence[IndexEntry], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Add or replace second vectors for ``entries``: their retrieval keys.

        A memory may have a key beside its text (``memory.retrieval.keys``: an episodic
        turn with its speaker, date and neighbours); its vector lives beside the text's,
        is found by :meth:`query_keys`, and goes with the entry on every delete.
        """
        ...

    def query_keys(
        self, user_id: str, vector: Sequence[float], *, k: int, kinds: Sequence[str] | None = None
    ) -> list[IndexHit]:
        """As :meth:`query`, over the key vectors."""
        ...

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> None:
        """Remove entries, their key vectors included (unknown ids are ignored)."""
        ...

    def delete_user(self, user_id: str) -> None:
        """Remove everything indexed for ``user_id``, key vectors included."""
        ...

    def count(self, user_id: str) -> int:
        """How many entries ``user_id`` has (key vectors not counted)."""
        ...


@runtime_checkable
class LexicalIndex(Protocol):
    """Full-text search per user (BM25 or the database's own ranking)."""

    def upsert(self, user_id: str, entries: Sequence[IndexEntry]) -> None:
        """Add or replace ``entries`` for ``user_id``."""
        ...

    def query(
        self, user_id: str, text: str, *, k: int, kinds: Sequence[str] | None = None
    ) -> list[IndexHit]:
        """The ``k`` best term matches of ``text`` among the user's entries, best first.

        Free text from a person: punctuation and operators must never raise.
        """
        ...

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> None:
        """Remove entries (unknown ids are ignored)."""
        ...

    def delete_user(self, user_id: str) -> None:
        """Remove everything indexed for ``user_id``."""
        ...

    def count(self, user_id: str) -> int:
        """How many entries ``user_id`` has."""
        ...
