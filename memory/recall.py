"""Lexical recall over a user's earlier turns.

A first, simple ranker: BM25-style term overlap between the new message and each earlier
turn. The Memory issue replaces it with hybrid retrieval (dense + lexical + recency).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_WORD = re.compile(r"[\w']+", re.UNICODE)
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "hello",
        "hi",
        "how",
        "i",
        "i'm",
        "if",
        "in",
        "is",
        "it",
        "it's",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "hey",
        "ok",
        "okay",
        "yes",
        "no",
        "not",
        "just",
        "about",
        "into",
        "also",
    }
)


@dataclass(frozen=True)
class Candidate:
    """A turn that may be recalled."""

    id: str
    text: str
    created_at: datetime
    role: str


@dataclass(frozen=True)
class Recalled:
    """A recalled turn and its relevance score."""

    id: str
    text: str
    created_at: datetime
    role: str
    score: float


def terms(text: str) -> list[str]:
    """Lower-cased content words of ``text`` (stopwords and 1-letter tokens dropped)."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOPWORDS]


def rank(
    query: str, candidates: Sequence[Candidate], *, k: int, k1: float = 1.2, b: float = 0.75
) -> list[Recalled]:
    """Return up to ``k`` candidates sharing terms with ``query``, best first (BM25)."""
    q_terms = set(terms(query))
    if not q_terms or not candidates or k <= 0:
        return []
    docs = [Counter(terms(c.text)) for c in candidates]
    n = len(docs)
    avg_len = sum(sum(d.values()) for d in docs) / n or 1.0
    df = Counter(t for d in docs for t in q_terms if t in d)
    scored: list[Recalled] = []
    for cand, doc in zip(candidates, docs, strict=True):
        length = sum(doc.values())
        score = 0.0
        for t in q_terms & doc.keys():
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            tf = doc[t]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        if score > 0:
            scored.append(Recalled(cand.id, cand.text, cand.created_at, cand.role, score))
    scored.sort(key=lambda r: (-r.score, -r.created_at.timestamp()))
    return scored[:k]
