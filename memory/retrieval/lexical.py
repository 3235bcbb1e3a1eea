"""Full-text search over memories: SQLite FTS5 (BM25) or PostgreSQL ``tsvector``.

The tables come from migration ``0003`` and are not SQLModel models (``include_name``
keeps them out of autogenerate). Both implementations keep one row per (user, memory),
so, as in the vector index, the same memory id under two users names two entries, and
every statement filters by ``user_id`` in SQL.

Queries are free text from a person. Neither FTS5's query language nor ``tsquery``'s
is exposed: the text is split into word terms here (``query_terms``), and a memory
matches when it contains any of them; memories containing more, and rarer, terms rank
first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from memory.retrieval.protocols import IndexEntry, IndexHit, LexicalIndex

MAX_TERMS = 32
"""Distinct terms kept from one query; a pasted page should not become a huge OR."""
MAX_TERM_CHARS = 64
"""Longer "words" (hashes, base64) are dropped from queries rather than matched."""

# What migration 0003 creates: the content table, the FTS5 table and FTS5's own
# shadow tables (memory_fts_data, _idx, _docsize, _config).
_LEXICAL_TABLE = re.compile(r"memory_terms|memory_fts(_\w+)?")
_TERM = re.compile(r"[^\W_]+")
_CHUNK = 500


def is_lexical_table(name: str) -> bool:
    """Whether ``name`` is one of the tables the lexical index manages itself."""
    return _LEXICAL_TABLE.fullmatch(name) is not None


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic ``include_name`` hook: leave the lexical index's tables out of comparisons.

    Args:
        name: The reflected object's name.
        type_: ``"table"``, ``"column"``, ``"index"``, ...
        parent_names: Names of the enclosing schema and table (unused).

    Returns:
        ``False`` for the lexical tables, ``True`` for everything else.
    """
    del parent_names
    return not (type_ == "table" and name is not None and is_lexical_table(name))


def query_terms(text: str) -> list[str]:
    """Split free text into distinct lower-case word terms (letters and digits only).

    Operators, quotes and punctuation are separators, so nothing a person types reaches
    the database's query syntax.
    """
    terms: dict[str, None] = {}
    for match in _TERM.finditer(text):
        term = match.group().lower()
        if len(term) <= MAX_TERM_CHARS:
            terms.setdefault(term, None)
            if len(terms) == MAX_TERMS:
                break
    return list(terms)


_STOPWORD_TEXT = (
    "a about again am an and any are as at be been before did do does for from had have "
    "how i in is it its me my now of on or our since so that the these this to us was "
    "we were what when where which who whom why with you your"
    # pieces of contractions, as the index splits them (what's, I'm, I've, we're)
    " s m ve re"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""English function words: they match most memories, so they cost time and add little.

Function words only: words of the synthetic suite's question templates ("remind",
"tell") were removed, since a list fitted to one's own questions does not carry over.
A longer list by grammatical class (all pronouns, modals, prepositions) did worse on
LoCoMo's development conversations (recall@10 0.747 against 0.759)."""


def strip_stopwords(text: str) -> str:
    """``text``'s words without ``STOPWORDS``; ``text`` itself when nothing else is left.

    Words are split as the lexical index splits them (``query_terms``: "what's" is
    "what" and "s"). Hybrid search queries the lexical index with this: the OR query
    over content words alone touches far fewer rows (faster) and ranks better.
    """
    kept = [w for w in query_terms(text) if w not in STOPWORDS]
    return " ".join(kept) or text


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(items))
    for i in range(0, len(unique), _CHUNK):
        yield unique[i : i + _CHUNK]


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; SQLite's tokenizer would stop at it.
    return text.replace("\x00", " ")


class _SqlLexicalIndex:
    """What both dialects share: the ``memory_terms`` table keyed by (user, memory)."""

    _upsert_sql: ClassVar[str]

    def __init__(self, engine: Engine) -> None:
        """Use ``engine``, whose schema is migrated to revision ``0003`` or later."""
        self._engine = engine

    def upsert(self, user_id: str, entries: Sequence[IndexEntry]) -> None:
        """Add or replace ``entries`` for ``user_id``."""
        if not entries:
            return
        # The last entry for an id wins, as if the upserts ran one by one.
        rows = {
            e.memory_id: {
                "uid": user_id,
                "mid": e.memory_id,
                "kind": e.kind,
                "text": _clean(e.text),
            }
            for e in entries
        }
        with self._engine.begin() as conn:
            conn.execute(sa.text(self._upsert_sql), list(rows.values()))

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> None:
        """Remove entries (unknown ids are ignored)."""
        stmt = sa.text(
            "DELETE FROM memory_terms WHERE user_id = :uid AND memory_id IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        with self._engine.begin() as conn:
            for chunk in _chunks(memory_ids):
                conn.execute(stmt, {"uid": user_id, "ids": chunk})

    def delete_user(self, user_id: str) -> None:
        """Remove everything indexed for ``user_id``."""
        with self._engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM memory_terms WHERE user_id = :uid"), {"uid": user_id})

    def count(self, user_id: str) -> int:
        """How many entries ``user_id`` has."""
        with self._engine.connect() as conn:
            n = conn.execute(
                sa.text("SELECT count(*) FROM memory_terms WHERE user_id = :uid"), {"uid": user_id}
            ).scalar_one()
        return int(n)

    def query(
        self, user_id: str, text: str, *, k: int, kinds: Sequence[str] | None = None
    ) -> list[IndexHit]:
        """The ``k`` best term matches of ``text`` among the user's entries, best first.

        Never raises on what a person typed; text without word terms, ``k < 1`` or an
        empty ``kinds`` gives ``[]``.
        """
        terms = query_terms(text)
        if not terms or k < 1 or (kinds is not None and not kinds):
            return []
        sql, params = self._search_sql(user_id, terms, k=k, kinds=kinds)
        stmt = sa.text(sql)
        if kinds is not None:
            stmt = stmt.bindparams(sa.bindparam("kinds", expanding=True))
        with self._engine.connect() as conn:
            rows = conn.execute(stmt, params).all()
        return [IndexHit(memory_id=str(row[0]), score=float(row[1])) for row in rows]

    def _search_sql(
        self, user_id: str, terms: list[str], *, k: int, kinds: Sequence[str] | None
    ) -> tuple[str, dict[str, Any]]:
        """The dialect's ranking SQL (memory id, score; best first) and its parameters.

        ``kinds``, when given, is bound as the expanding parameter ``:kinds``.
        """
        raise NotImplementedError


def _kinds_clause(column: str, kinds: Sequence[str] | None, params: dict[str, Any]) -> str:
    if kinds is None:
        return ""
    params["kinds"] = list(kinds)
    return f" AND {column} IN :kinds"


class SqliteFtsIndex(_SqlLexicalIndex):
    """A ``LexicalIndex`` on SQLite FTS5 (porter stemming, unicode61), ranked by BM25.

    Scores are ``-bm25()``, so larger is better. FTS5 computes term rarity over the whole
    index (all users), which only shifts weights; matches never cross users.
    """

    _upsert_sql = (
        "INSERT INTO memory_terms (user_id, memory_id, kind, text)"
        " VALUES (:uid, :mid, :kind, :text)"
        " ON CONFLICT (user_id, memory_id) DO UPDATE SET kind = excluded.kind, text = excluded.text"
    )

    def _search_sql(
        self, user_id: str, terms: list[str], *, k: int, kinds: Sequence[str] | None
    ) -> tuple[str, dict[str, Any]]:
        # Each term is an FTS5 string ("..."): no operator, column filter or prefix
        # syntax can come from the user. Terms hold no quotes, by construction.
        match = " OR ".join(f'"{t}"' for t in terms)
        params: dict[str, Any] = {"match": match, "uid": user_id, "k": k}
        sql = (
            "SELECT t.memory_id, -bm25(memory_fts) AS score"
            " FROM memory_fts JOIN memory_terms AS t ON t.id = memory_fts.rowid"
            " WHERE memory_fts MATCH :match AND t.user_id = :uid"
            + _kinds_clause("t.kind", kinds, params)
            + " ORDER BY score DESC, t.memory_id LIMIT :k"
        )
        return sql, params


class PostgresFtsIndex(_SqlLexicalIndex):
    """A ``LexicalIndex`` on PostgreSQL ``tsvector`` with a GIN index.

    The text search configuration is ``english``: it stems (``cats`` finds ``cat``) and
    drops stop words, which matches SQLite's porter tokenizer, so both backends find the
    same memories. ``ts_rank_cd`` has no notion of term rarity, so the score is BM25's
    IDF summed over the query terms a memory contains (rarity counted among the user's
    own memories) plus ``ts_rank_cd`` normalized to [0, 1) for frequency, proximity and
    length. Larger is better.
    """

    _upsert_sql = (
        "INSERT INTO memory_terms (user_id, memory_id, kind, tsv)"
        " VALUES (:uid, :mid, :kind, to_tsvector('english', :text))"
        " ON CONFLICT (user_id, memory_id) DO UPDATE SET kind = excluded.kind, tsv = excluded.tsv"
    )

    def _search_sql(
        self, user_id: str, terms: list[str], *, k: int, kinds: Sequence[str] | None
    ) -> tuple[str, dict[str, Any]]:
        # ``:any`` is one OR query over the terms: ``matched`` is the user's memories
        # containing any term (every kind: document frequencies count them all), found
        # once. ``per_term`` are the terms one by one; their document frequencies need
        # only ``matched``. Stop words give empty queries (numnode 0) and are dropped.
        # websearch_to_tsquery never raises, and the terms are bare words joined by its
        # "or" operator. MATERIALIZED keeps PostgreSQL from re-running a CTE per row.
        params: dict[str, Any] = {
            "uid": user_id,
            "terms": terms,
            "any": " or ".join(t for t in terms if t != "or"),
            "k": k,
        }
        sql = (
            "WITH matched AS MATERIALIZED ("
            "  SELECT memory_id, kind, tsv FROM memory_terms"
            "  WHERE user_id = :uid AND tsv @@ websearch_to_tsquery('english', :any)"
            "), per_term AS ("
            "  SELECT DISTINCT plainto_tsquery('english', term) AS tq"
            "  FROM unnest(CAST(:terms AS text[])) AS term"
            "), idf AS MATERIALIZED ("
            "  SELECT q.tq, ln(1.0 + (n.n - count(mt.memory_id) + 0.5)"
            "                        / (count(mt.memory_id) + 0.5)) AS w"
            "  FROM per_term AS q"
            "  CROSS JOIN (SELECT count(*) AS n FROM memory_terms WHERE user_id = :uid) AS n"
            "  LEFT JOIN matched AS mt ON mt.tsv @@ q.tq"
            "  WHERE numnode(q.tq) > 0"
            "  GROUP BY q.tq, n.n"
            ") SELECT h.memory_id,"
            "  coalesce(sum(idf.w), 0)"
            "  + ts_rank_cd(h.tsv, websearch_to_tsquery('english', :any), 1 | 32) AS score"
            " FROM matched AS h LEFT JOIN idf ON h.tsv @@ idf.tq"
            " WHERE true" + _kinds_clause("h.kind", kinds, params) + " GROUP BY h.memory_id, h.tsv"
            " ORDER BY score DESC, h.memory_id LIMIT :k"
        )
        return sql, params


def make_lexical_index(engine: Engine) -> LexicalIndex:
    """The lexical index for ``engine``'s dialect (SQLite or PostgreSQL)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return SqliteFtsIndex(engine)
    if dialect == "postgresql":
        return PostgresFtsIndex(engine)
    raise ValueError(f"no lexical index for the {dialect} dialect")
