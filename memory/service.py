"""Episodic and semantic memory: writes with provenance, hybrid search, deletion.

One ``MemoryService`` per process. Rows live in the record store (``memories`` and
``memory_sources``); vectors in a ``VectorIndex``; terms in a ``LexicalIndex``. Writes go to
the indexes first and the rows last, so a failure leaves at worst index entries without a
row, which searches skip. Every read and write names the user, and each store filters by
that user itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from memory.config import MemorySettings
from memory.consolidate import Existing, Merge, Supersede, plan
from memory.extraction import Candidate, Extractor, content_hash
from memory.fusion import reciprocal_rank_fusion
from memory.index import Embedder, IndexEntry, LexicalIndex, VectorIndex
from memory.records import Memory, MemorySource, Turn, utcnow

log = logging.getLogger(__name__)

SEMANTIC_KINDS = ("fact", "preference", "instruction")
KINDS = ("episodic", "summary", *SEMANTIC_KINDS)
Mode = Literal["hybrid", "dense", "lexical"]


@dataclass(frozen=True)
class SourceRef:
    """A turn a memory came from."""

    turn_id: str
    external_id: str | None = None


@dataclass(frozen=True)
class NewMemory:
    """A memory to write."""

    kind: str
    text: str
    sources: Sequence[SourceRef] = ()
    speaker: str | None = None
    slot: str | None = None
    thread_id: str | None = None
    created_at: datetime | None = None
    valid_from: datetime | None = None


@dataclass
class MemoryView:
    """A memory as callers see it, with its sources and, from a search, its score."""

    id: str
    kind: str
    text: str
    speaker: str | None
    sources: list[dict[str, str | None]]
    created_at: datetime
    valid_from: datetime
    invalid_at: datetime | None
    superseded_by: str | None
    thread_id: str | None = None
    score: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "speaker": self.speaker,
            "score": self.score,
            "sources": self.sources,
            "created_at": self.created_at.isoformat(),
            "valid_from": self.valid_from.isoformat(),
            "invalid_at": self.invalid_at.isoformat() if self.invalid_at else None,
            "superseded_by": self.superseded_by,
        }


class MemoryService:
    """Writes, searches and deletes a user's memories across rows, vectors and terms."""

    def __init__(
        self,
        engine: Engine,
        *,
        embedder: Embedder,
        vectors: VectorIndex,
        lexical: LexicalIndex,
        extractor: Extractor,
        settings: MemorySettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Use ``engine`` for rows and the given indexes; the caller owns them all."""
        self.engine = engine
        self.embedder = embedder
        self.vectors = vectors
        self.lexical = lexical
        self.extractor = extractor
        self.settings = settings
        self.clock = clock

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ---- writes -------------------------------------------------------------------------

    def add(self, user_id: str, items: Sequence[NewMemory]) -> list[MemoryView]:
        """Write ``items`` (embedding them in batches) and return them."""
        if not items:
            return []
        now = self.clock()
        rows = [
            Memory(
                user_id=user_id,
                kind=item.kind,
                text=item.text,
                speaker=item.speaker,
                slot=item.slot,
                content_hash=content_hash(item.text),
                thread_id=item.thread_id,
                created_at=item.created_at or now,
                valid_from=item.valid_from or item.created_at or now,
            )
            for item in items
        ]
        self._index(user_id, rows)
        links = [
            MemorySource(
                memory_id=row.id, turn_id=s.turn_id, external_id=s.external_id, user_id=user_id
            )
            for row, item in zip(rows, items, strict=True)
            for s in {s.turn_id: s for s in item.sources}.values()
        ]
        with self._session() as session:
            session.add_all(rows)
            session.flush()
            session.add_all(links)
            session.commit()
        return self._views(rows, links)

    def index_turns(self, turns: Sequence[Turn]) -> list[MemoryView]:
        """Index turns as episodic memories, so they are searchable before the next turn."""
        by_user: dict[str, list[NewMemory]] = {}
        for t in turns:
            if not t.content.strip():
                continue
            by_user.setdefault(t.user_id, []).append(
                NewMemory(
                    kind="episodic",
                    text=t.content,
                    sources=[SourceRef(t.id, t.external_id)],
                    speaker=t.role,
                    thread_id=t.thread_id,
                    created_at=t.created_at,
                )
            )
        return [view for user_id, items in by_user.items() for view in self.add(user_id, items)]

    def distill(self, turn: Turn) -> list[MemoryView]:
        """Extract semantic memories from a user turn and fold them into what is known.

        Duplicates merge (the new turn becomes another source); a fact that contradicts a
        current one in the same slot supersedes it (``invalid_at`` set, kept as history).
        """
        if turn.role != "user":
            return []
        candidates = self.extractor.extract(turn.content, speaker="user", at=turn.created_at)
        return self.apply(turn.user_id, candidates, SourceRef(turn.id, turn.external_id))

    def distill_many(self, turns: Sequence[Turn]) -> int:
        """Distill each user turn in order; return how many memories were written."""
        return sum(len(self.distill(t)) for t in turns)

    def apply(
        self, user_id: str, candidates: Sequence[Candidate], source: SourceRef
    ) -> list[MemoryView]:
        """Apply extracted ``candidates`` from ``source``; return the memories written."""
        if not candidates:
            return []
        with self._session() as session:
            current = session.exec(
                select(Memory).where(
                    Memory.user_id == user_id,
                    col(Memory.kind).in_(SEMANTIC_KINDS),
                    col(Memory.invalid_at).is_(None),
                )
            ).all()
        existing = [Existing(m.id, m.kind, m.text, m.slot, m.content_hash) for m in current]
        actions = plan(existing, candidates)
        new_items: list[NewMemory] = []
        retire: list[tuple[int, str]] = []  # (index in new_items, memory it replaces)
        merges: list[str] = []
        for action in actions:
            if isinstance(action, Merge):
                merges.append(action.memory_id)
                continue
            cand = action.candidate
            new_items.append(
                NewMemory(
                    kind=cand.kind,
                    text=cand.text,
                    sources=[source],
                    speaker=cand.speaker,
                    slot=cand.slot,
                    valid_from=cand.valid_from,
                )
            )
            if isinstance(action, Supersede):
                retire.extend((len(new_items) - 1, old_id) for old_id in action.old_ids)
        written = self.add(user_id, new_items)
        with self._session() as session:
            for memory_id in merges:
                if session.get(MemorySource, (memory_id, source.turn_id)) is None:
                    session.add(
                        MemorySource(
                            memory_id=memory_id,
                            turn_id=source.turn_id,
                            external_id=source.external_id,
                            user_id=user_id,
                        )
                    )
            for index, old_id in retire:
                old, successor = session.get(Memory, old_id), written[index]
                if old is not None and old.user_id == user_id and old.invalid_at is None:
                    old.invalid_at = max(successor.valid_from, old.valid_from)
                    old.superseded_by = successor.id
            session.commit()
        return written

    def update(
        self, user_id: str, memory_id: str, *, text: str | None = None, kind: str | None = None
    ) -> MemoryView | None:
        """Edit a memory's text or kind (re-indexed); ``None`` if the user has no such memory."""
        with self._session() as session:
            row = session.get(Memory, memory_id)
            if row is None or row.user_id != user_id:
                return None
            if text is not None:
                row.text, row.content_hash = text, content_hash(text)
            if kind is not None:
                row.kind = kind
            self._index(user_id, [row])
            session.add(row)
            session.commit()
        return self.get(user_id, memory_id)

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> int:
        """Delete memories from rows, vectors and terms; return how many existed."""
        with self._session() as session:
            owned = list(
                session.exec(
                    select(Memory.id).where(
                        Memory.user_id == user_id, col(Memory.id).in_(memory_ids)
                    )
                ).all()
            )
            if not owned:
                return 0
            self.vectors.delete(user_id, owned)
            self.lexical.delete(user_id, owned)
            session.exec(delete(MemorySource).where(col(MemorySource.memory_id).in_(owned)))
            session.exec(delete(Memory).where(col(Memory.id).in_(owned)))
            session.commit()
        return len(owned)

    def delete_for_turns(self, user_id: str, turn_ids: Sequence[str]) -> int:
        """Delete every memory derived from any of ``turn_ids``; return how many."""
        with self._session() as session:
            ids = list(
                session.exec(
                    select(MemorySource.memory_id).where(
                        MemorySource.user_id == user_id, col(MemorySource.turn_id).in_(turn_ids)
                    )
                ).all()
            )
        return self.delete(user_id, sorted(set(ids)))

    def delete_user(self, user_id: str) -> None:
        """Remove the user's vectors and terms (rows go with the user's records)."""
        self.vectors.delete_user(user_id)
        self.lexical.delete_user(user_id)

    def _index(self, user_id: str, rows: Sequence[Memory]) -> None:
        entries = [IndexEntry(r.id, r.text, r.kind, r.created_at.timestamp()) for r in rows]
        vectors = self.embedder.embed([r.text for r in rows])
        self.vectors.upsert(user_id, entries, vectors)
        self.lexical.upsert(user_id, entries)

    # ---- reads --------------------------------------------------------------------------

    def search(
        self,
        user_id: str,
        query: str,
        *,
        k: int = 10,
        kinds: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        include_invalid: bool = False,
        exclude_thread_id: str | None = None,
    ) -> list[MemoryView]:
        """The user's memories most relevant to ``query``, best first.

        ``hybrid`` fuses dense, lexical and recency rankings by reciprocal rank; ``dense``
        and ``lexical`` use one retriever (the baselines of the memory eval).
        """
        s = self.settings
        fetch = max(s.fetch_k, k)
        rankings: dict[str, list[str]] = {}
        if mode in ("hybrid", "dense"):
            vector = self.embedder.embed([query])[0]
            rankings["dense"] = [
                h.memory_id for h in self.vectors.query(user_id, vector, k=fetch, kinds=kinds)
            ]
        if mode in ("hybrid", "lexical"):
            rankings["lexical"] = [
                h.memory_id for h in self.lexical.query(user_id, query, k=fetch, kinds=kinds)
            ]
        if mode == "hybrid" and s.recency_weight > 0:
            rankings["recency"] = self._recent_ids(user_id, fetch, kinds)
        fused = reciprocal_rank_fusion(
            rankings,
            {"dense": s.dense_weight, "lexical": s.lexical_weight, "recency": s.recency_weight},
            rrf_k=s.rrf_k,
        )
        # Recency alone is a tie-breaker, not evidence of relevance.
        fused = [f for f in fused if set(f.ranks) - {"recency"}]
        rows = self._rows(user_id, [f.id for f in fused])
        kept: list[tuple[Memory, float, dict[str, int]]] = []
        for f in fused:
            row = rows.get(f.id)
            if row is None or (row.invalid_at is not None and not include_invalid):
                continue
            if exclude_thread_id is not None and row.thread_id == exclude_thread_id:
                continue
            kept.append((row, f.score, f.ranks))
            if len(kept) >= k:
                break
        views = self._views([r for r, _, _ in kept], self._links([r.id for r, _, _ in kept]))
        for view, (_, score, ranks) in zip(views, kept, strict=True):
            view.score, view.ranks = round(score, 6), ranks
        return views

    def _recent_ids(self, user_id: str, n: int, kinds: Sequence[str] | None) -> list[str]:
        query = select(Memory.id).where(Memory.user_id == user_id)
        if kinds:
            query = query.where(col(Memory.kind).in_(kinds))
        with self._session() as session:
            return list(session.exec(query.order_by(col(Memory.created_at).desc()).limit(n)).all())

    def _rows(self, user_id: str, ids: Sequence[str]) -> dict[str, Memory]:
        if not ids:
            return {}
        with self._session() as session:
            rows = session.exec(
                select(Memory).where(Memory.user_id == user_id, col(Memory.id).in_(ids))
            ).all()
        return {r.id: r for r in rows}

    def _links(self, ids: Sequence[str]) -> list[MemorySource]:
        with self._session() as session:
            return list(
                session.exec(select(MemorySource).where(col(MemorySource.memory_id).in_(ids))).all()
            )

    @staticmethod
    def _views(rows: Sequence[Memory], links: Sequence[MemorySource]) -> list[MemoryView]:
        sources: dict[str, list[dict[str, str | None]]] = {}
        for link in links:
            sources.setdefault(link.memory_id, []).append(
                {"turn_id": link.turn_id, "external_id": link.external_id}
            )
        return [
            MemoryView(
                id=r.id,
                kind=r.kind,
                text=r.text,
                speaker=r.speaker,
                sources=sorted(sources.get(r.id, []), key=lambda s: s["turn_id"] or ""),
                created_at=r.created_at,
                valid_from=r.valid_from,
                invalid_at=r.invalid_at,
                superseded_by=r.superseded_by,
                thread_id=r.thread_id,
            )
            for r in rows
        ]

    def get(self, user_id: str, memory_id: str) -> MemoryView | None:
        """One of the user's memories, or ``None``."""
        row = self._rows(user_id, [memory_id]).get(memory_id)
        return self._views([row], self._links([row.id]))[0] if row is not None else None

    def list(
        self,
        user_id: str,
        *,
        kind: str | None = None,
        include_invalid: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[MemoryView], int]:
        """A page of the user's memories, newest first, and the total count."""
        query = select(Memory).where(Memory.user_id == user_id)
        count = select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
            count = count.where(Memory.kind == kind)
        if not include_invalid:
            query = query.where(col(Memory.invalid_at).is_(None))
            count = count.where(col(Memory.invalid_at).is_(None))
        with self._session() as session:
            rows = session.exec(
                query.order_by(col(Memory.created_at).desc(), col(Memory.id))
                .offset(offset)
                .limit(limit)
            ).all()
            total = int(session.exec(count).one())
        return self._views(rows, self._links([r.id for r in rows])), total
