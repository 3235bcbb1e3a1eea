"""Naive retrieval baselines for the LoCoMo eval, over the conversation's turns alone.

Each turn is one document, ``"<speaker> (<session date>): <text>"``, as in the reference
figures of the data's README: Okapi BM25 on lower-cased word tokens, all-MiniLM-L6-v2
cosine similarity, and reciprocal-rank fusion of the two (``k = 60``, equal weights). They
share nothing with Attune's indexes, so they say what the simplest systems reach on the
same turns and questions in the same run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from evals.suites.locomo.data import LocomoTurn
from memory.retrieval.fusion import reciprocal_rank_fusion
from memory.retrieval.protocols import Embedder

BASELINES = ("bm25", "dense", "rrf")
_WORD = re.compile(r"[^\W_]+")


def document(turn: LocomoTurn) -> str:
    """A turn as the baselines index it."""
    return f"{turn.speaker} ({turn.date}): {turn.text}"


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits)."""
    return [w.lower() for w in _WORD.findall(text)]


class BM25:
    """Okapi BM25 (``k1 = 1.5``, ``b = 0.75``) over a fixed list of documents."""

    def __init__(self, docs: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        """Index ``docs``."""
        self.k1, self.b = k1, b
        self.docs = [Counter(tokens(d)) for d in docs]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(len(self.docs), 1)
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> list[float]:
        """The score of every document for ``query``, in document order."""
        terms = [t for t in dict.fromkeys(tokens(query)) if t in self.idf]
        out = []
        for d, length in zip(self.docs, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            out.append(
                sum(self.idf[t] * d[t] * (self.k1 + 1) / (d[t] + norm) for t in terms if t in d)
            )
        return out


def _top(ids: Sequence[str], scores: Sequence[float], k: int) -> list[str]:
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], i))
    return [ids[i] for i in order[:k]]


def baseline_rankings(
    turns: Sequence[LocomoTurn], questions: Sequence[str], embedder: Embedder, *, k: int = 20
) -> dict[str, list[list[str]]]:
    """For each baseline, each question's top ``k`` turn ids, best first."""
    ids = [t.id for t in turns]
    docs = [document(t) for t in turns]
    bm25 = BM25(docs)
    doc_vectors = np.asarray(embedder.embed(docs), dtype=np.float32)  # (turns, 384)
    query_vectors = np.asarray(embedder.embed(list(questions)), dtype=np.float32)  # (q, 384)
    similarity = query_vectors @ doc_vectors.T  # (q, turns): cosine, vectors are unit length
    out: dict[str, list[list[str]]] = {name: [] for name in BASELINES}
    for qi, question in enumerate(questions):
        lexical = _top(ids, bm25.scores(question), 50)
        dense = _top(ids, similarity[qi].tolist(), 50)
        fused = reciprocal_rank_fusion({"bm25": lexical, "dense": dense}, {}, rrf_k=60)
        out["bm25"].append(lexical[:k])
        out["dense"].append(dense[:k])
        out["rrf"].append([f.id for f in fused[:k]])
    return out
