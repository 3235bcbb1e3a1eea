"""Reading memories: hybrid search, and memory rows as callers see them.

Plain functions behind :meth:`memory.service.MemoryService.search`, ``get`` and ``list``.
Each read opens its own short session on the engine, and every read names the user: rows
are fetched by primary key and their owner checked here, vectors and terms are filtered
by the indexes themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.config import MemorySettings
from memory.records.tables import Memory, MemorySource
from memory.retrieval.fusion import (
    Fused,
    apply_priors,
    memory_prior,
    reciprocal_rank_fusion,
    spread_to_neighbours,
)
from memory.retrieval.keys import speakers
from memory.retrieval.lexical import strip_stopwords
from memory.retrieval.protocols import Embedder, LexicalIndex, VectorIndex
from memory.retrieval.query_vectors import query_vector
from memory.retrieval.rerank import Signals, shipped
from memory.views import MemoryView

Mode = Literal["hybrid", "dense", "lexical"]


def search(
    engine: Engine,
    *,
    embedder: Embedder,
    vectors: VectorIndex,
    lexical: LexicalIndex,
    settings: MemorySettings,
    user_id: str,
    query: str,
    k: int = 10,
    kinds: Sequence[str] | None = None,
    mode: Mode = "hybrid",
    include_invalid: bool = False,
    exclude_thread_id: str | None = None,
    dense_ready: bool = True,
) -> list[MemoryView]:
    """The user's memories most relevant to ``query``, best first.

    ``hybrid`` fuses dense, lexical (on the query's content words, unless
    ``hybrid_lexical_stopwords``) and recency rankings by reciprocal rank, then applies
    the priors (``speaker_prior``: the one person the query names said it;
    ``user_said_prior``, ``question_prior``), spreads to neighbouring turns and, with
    ``rerank``, rescores the top candidates (``memory.retrieval.rerank``); ``dense`` and
    ``lexical`` use one retriever (the baselines of the memory eval). In every mode a
    text repeated in several memories is returned once (its best-ranked copy).

    Args:
        engine: The record store's engine (rows and sources).
        embedder: Embeds the query for the dense ranking.
        vectors: The dense index.
        lexical: The lexical index.
        settings: Fetch depth, fusion weights and priors.
        user_id: Whose memories.
        query: The text to search for.
        k: The most results.
        kinds: Only memories of these kinds (``None``: all).
        mode: ``hybrid``, ``dense`` or ``lexical``.
        include_invalid: Also superseded memories.
        exclude_thread_id: Leave out memories of this thread.
        dense_ready: ``False`` while the user's vectors are still being written: hybrid
            then ranks without the dense index, whose partial ranking would favour
            whatever happened to be embedded first.

    Returns:
        Views with ``score`` and ``ranks`` (the rank each retriever gave) set.
    """
    cands = candidates(
        engine,
        embedder=embedder,
        vectors=vectors,
        lexical=lexical,
        settings=settings,
        user_id=user_id,
        query=query,
        k=k,
        kinds=kinds,
        mode=mode,
        dense_ready=dense_ready,
    )
    fused, rows = cands.fused, cands.rows
    if mode == "hybrid" and settings.rerank and cands.signals.dense:
        fused = rerank_turns(
            query, [f for f in fused if f.id in rows], rows, cands.signals, settings.rerank_top
        )
    kept = _best_distinct(
        fused, rows, k=k, include_invalid=include_invalid, exclude_thread_id=exclude_thread_id
    )
    views = to_views([r for r, _ in kept], load_links(engine, [r.id for r, _ in kept]))
    for view, (_, f) in zip(views, kept, strict=True):
        view.score, view.ranks = round(f.score, 6), f.ranks
    return views


def rerank_turns(
    query: str, fused: list[Fused], rows: Mapping[str, Memory], signals: Signals, top: int
) -> list[Fused]:
    """``fused`` with its first ``top`` items' episodic ones reordered by the reranker.

    The reranker learned to order conversation turns (``evals.rerank_train``); distilled
    facts, preferences and summaries keep the places the fusion gave them, and the turns
    among them are reordered in the places turns held.
    """
    head = fused[:top]
    slots = [i for i, f in enumerate(head) if rows[f.id].kind == "episodic"]
    ranked = shipped().rerank(query, [head[i] for i in slots], rows, signals)
    for i, f in zip(slots, ranked, strict=True):
        head[i] = f
    return head + fused[top:]


@dataclass
class Candidates:
    """The first stage's ranking: fused items, their rows, and what each retriever saw."""

    fused: list[Fused]
    rows: dict[str, Memory]
    signals: Signals


def candidates(
    engine: Engine,
    *,
    embedder: Embedder,
    vectors: VectorIndex,
    lexical: LexicalIndex,
    settings: MemorySettings,
    user_id: str,
    query: str,
    k: int,
    kinds: Sequence[str] | None,
    mode: Mode,
    dense_ready: bool,
) -> Candidates:
    """The first stage of :func:`search`: retrieve, fuse, apply priors, spread to neighbours.

    ``signals`` keeps the dense and lexical scores and the named speaker's memories, which
    the reranker (``memory.retrieval.rerank``) reads; ``evals.rerank_train`` trains it on
    exactly this output.
    """
    s = settings
    fetch = max(s.fetch_k, k)
    rankings: dict[str, list[str]] = {}
    dense: dict[str, float] = {}
    lexical_scores: dict[str, float] = {}
    if mode == "dense" or (mode == "hybrid" and dense_ready):
        vector = query_vector(embedder, query)  # once per turn, not per search
        dense = dense_scores(vectors, user_id, vector, k=fetch, kinds=kinds)
        rankings["dense"] = list(dense)
    if mode in ("hybrid", "lexical"):
        terms = query
        if mode == "hybrid" and not s.hybrid_lexical_stopwords:
            terms = strip_stopwords(query)
        hits = lexical.query(user_id, terms, k=fetch, kinds=kinds)
        lexical_scores = {h.memory_id: h.score for h in hits}
        rankings["lexical"] = [h.memory_id for h in hits]
    if mode == "hybrid" and s.recency_weight > 0:
        rankings["recency"] = recent_ids(engine, user_id, fetch, kinds)
    fused = reciprocal_rank_fusion(
        rankings,
        {"dense": s.dense_weight, "lexical": s.lexical_weight, "recency": s.recency_weight},
        rrf_k=s.rrf_k,
    )
    # Recency alone is a tie-breaker, not evidence of relevance.
    fused = [f for f in fused if set(f.ranks) - {"recency"}]
    rows = load_rows(engine, user_id, [f.id for f in fused])
    named: list[str] = []
    if mode == "hybrid" and (s.user_said_prior or s.question_prior or s.speaker_prior or s.rerank):
        named = named_speaker_ids(engine, query, rows)
    if mode == "hybrid" and (s.user_said_prior or s.question_prior or s.speaker_prior):
        priors = {
            i: memory_prior(
                r.speaker, r.text, user_said=s.user_said_prior, question=s.question_prior
            )
            for i, r in rows.items()
        }
        if s.speaker_prior:
            for i in named:
                priors[i] += s.speaker_prior
        unit = max(s.dense_weight, s.lexical_weight) / (s.rrf_k + 1)
        fused = apply_priors(fused, priors, unit=unit)
    if mode == "hybrid" and s.neighbour_weight and (kinds is None or "episodic" in kinds):
        top = [rows[f.id] for f in fused[: s.neighbour_top] if f.id in rows]
        fused = spread_to_neighbours(
            fused, neighbour_ids(engine, user_id, top), weight=s.neighbour_weight
        )
        rows |= load_rows(engine, user_id, [f.id for f in fused if f.id not in rows])
    return Candidates(fused, rows, Signals(dense, lexical_scores, frozenset(named)))


FIRST_PERSON = frozenset(
    ["i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves"]
)
"""Words by which a query names the user: "What's my dog called?" asks about the user."""


def dense_scores(
    vectors: VectorIndex,
    user_id: str,
    vector: Sequence[float],
    *,
    k: int,
    kinds: Sequence[str] | None,
) -> dict[str, float]:
    """The ``k`` memories nearest ``vector`` by their text or their key, with cosines.

    Best first. A memory's similarity is the better of its text's and its key's (an episodic turn's
    key adds its speaker, date and neighbours, ``memory.retrieval.keys``): the text
    alone matches a question about what was said, the key one that names who and when
    or needs the turn's context.
    """
    best: dict[str, float] = {}
    for hits in (
        vectors.query(user_id, vector, k=k, kinds=kinds),
        vectors.query_keys(user_id, vector, k=k, kinds=kinds),
    ):
        for h in hits:
            best[h.memory_id] = max(best.get(h.memory_id, h.score), h.score)
    return {i: best[i] for i in sorted(best, key=lambda i: (-best[i], i))[:k]}


def named_speaker_ids(engine: Engine, query: str, rows: Mapping[str, Memory]) -> list[str]:
    """The episodic ``rows`` said by the one speaker whom ``query`` names.

    A speaker is named by name when each word of their name (as an import gave it) is a
    word of the query, case ignored ("What did Caroline research?"); the user is named
    by a first-person word ("What's my dog called?"). A query naming no speaker, or
    several, favours no one.
    """
    episodic = [i for i, r in rows.items() if r.kind == "episodic"]
    said_by = speakers(engine, episodic)
    words = {w.lower() for w in re.findall(r"[^\W_]+", query)}
    named = {
        name
        for name in set(said_by.values()) - {"user", "assistant"}
        if (parts := re.findall(r"[^\W_]+", name.lower())) and set(parts) <= words
    }
    if words & FIRST_PERSON:
        if named:
            return []
        return [i for i in episodic if rows[i].speaker == "user"]
    if len(named) != 1:
        return []
    return [i for i, name in said_by.items() if name in named]


def _best_distinct(
    fused: Sequence[Fused],
    rows: dict[str, Memory],
    *,
    k: int,
    include_invalid: bool,
    exclude_thread_id: str | None,
) -> list[tuple[Memory, Fused]]:
    """The first ``k`` fused items that have a row, pass the filters and repeat no text."""
    kept: list[tuple[Memory, Fused]] = []
    seen_texts: set[str] = set()
    for f in fused:
        row = rows.get(f.id)
        if row is None or (row.invalid_at is not None and not include_invalid):
            continue
        if exclude_thread_id is not None and row.thread_id == exclude_thread_id:
            continue
        # The same words said twice are one result: the best-ranked copy (and its
        # sources) stands for the rest, so repeats cannot crowd out other memories.
        if row.content_hash in seen_texts:
            continue
        seen_texts.add(row.content_hash)
        kept.append((row, f))
        if len(kept) >= k:
            break
    return kept


def _session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


def recent_ids(engine: Engine, user_id: str, n: int, kinds: Sequence[str] | None) -> list[str]:
    """Ids of the user's ``n`` newest memories (of ``kinds``, if given), newest first."""
    query = select(Memory.id).where(Memory.user_id == user_id)
    if kinds:
        query = query.where(col(Memory.kind).in_(kinds))
    with _session(engine) as session:
        return list(session.exec(query.order_by(col(Memory.created_at).desc()).limit(n)).all())


def neighbour_ids(engine: Engine, user_id: str, rows: Sequence[Memory]) -> dict[str, list[str]]:
    """The episodic memories just before and after each episodic memory of ``rows``.

    Neighbours are next to each other in their thread by ``created_at`` (history imports
    keep turns that share a timestamp in order, a microsecond apart).
    """
    episodic = [r for r in rows if r.kind == "episodic" and r.thread_id is not None]
    if not episodic:
        return {}
    stmt = sa.text(
        "SELECT id, before, after FROM ("
        "  SELECT id, LAG(id) OVER w AS before, LEAD(id) OVER w AS after FROM memories"
        "  WHERE user_id = :uid AND kind = 'episodic' AND thread_id IN :threads"
        "  WINDOW w AS (PARTITION BY thread_id ORDER BY created_at, id)"
        ") AS ordered WHERE id IN :ids"
    ).bindparams(sa.bindparam("threads", expanding=True), sa.bindparam("ids", expanding=True))
    params = {
        "uid": user_id,
        "threads": sorted({str(r.thread_id) for r in episodic}),
        "ids": [r.id for r in episodic],
    }
    with engine.connect() as conn:
        found = conn.execute(stmt, params).all()
    return {str(i): [str(n) for n in (b, a) if n is not None] for i, b, a in found}


def load_rows(engine: Engine, user_id: str, ids: Sequence[str]) -> dict[str, Memory]:
    """The user's memory rows among ``ids``, by id (others' rows are left out)."""
    if not ids:
        return {}
    # By primary key alone, the owner checked here: with ``user_id`` in the WHERE
    # clause SQLite picks a (user_id, ...) index and reads every memory of the user
    # (100 ms at 100k memories) instead of looking up ``len(ids)`` keys.
    with _session(engine) as session:
        rows = session.exec(select(Memory).where(col(Memory.id).in_(ids))).all()
    return {r.id: r for r in rows if r.user_id == user_id}


def load_links(engine: Engine, ids: Sequence[str]) -> list[MemorySource]:
    """The source links of the memories ``ids``."""
    with _session(engine) as session:
        return list(
            session.exec(select(MemorySource).where(col(MemorySource.memory_id).in_(ids))).all()
        )


def to_views(rows: Sequence[Memory], links: Sequence[MemorySource]) -> list[MemoryView]:
    """``rows`` as callers see them, each with its sources (from ``links``) by turn id."""
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
