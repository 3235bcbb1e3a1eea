"""The second stage of hybrid search: a learned linear reranker over the fused top candidates.

Reciprocal-rank fusion keeps only ranks: it cannot tell a dense match at cosine 0.71 from
one at 0.40 when both are second, nor a turn holding every content word of the question
from one holding one of them. The reranker rescores the top ``rerank_top`` fused
candidates with those signals (``FEATURES``), each computed from what the first stage
already has (no model call, well under a millisecond for 30 candidates), and a logistic
model learned on labelled questions (``evals.rerank_train``) weighs them.

No cross-encoder ships here: none is on the package index with its weights inside (the
rerankers there download them from a model hub at run time, which this product must not
need). The weights file, ``rerank_weights.npz`` beside this module, holds the feature
names it was trained with, the scaler, the coefficients and how it was trained; a file
whose names differ from ``FEATURES`` is refused rather than misread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memory.records.tables import Memory
from memory.retrieval.fusion import Fused, is_question
from memory.retrieval.lexical import query_terms, strip_stopwords

WEIGHTS = Path(__file__).with_name("rerank_weights.npz")

FEATURES = (
    "fused",  # fused score over the best fused score
    "inv_rank",  # 1 / fused rank
    "dense_rank",  # 1 / (10 + the dense retriever's rank), 0 when it did not find it
    "lexical_rank",  # the same for the lexical retriever
    "dense",  # cosine of the query to the text or key (the better), 0 when not found
    "dense_gap",  # that cosine minus the best candidate's
    "in_dense",
    "lexical",  # lexical score over the best candidate's
    "in_lexical",
    "coverage",  # share of the query's content words in the text
    "stem_coverage",  # the same on 5-letter prefixes (research/researched)
    "named",  # said by the one person the query names
    "question",  # the text only asks
    "length",  # log(1 + words)
)


@dataclass(frozen=True)
class Signals:
    """What the first stage knew about each candidate, by memory id."""

    dense: Mapping[str, float]
    lexical: Mapping[str, float]
    named: frozenset[str]


def features(
    query: str, fused: Sequence[Fused], rows: Mapping[str, Memory], signals: Signals
) -> NDArray[np.float64]:
    """One row of ``FEATURES`` per item of ``fused`` (in order)."""
    content = query_terms(strip_stopwords(query))
    stems = {t[:5] for t in content}
    top_score = fused[0].score if fused and fused[0].score > 0 else 1.0
    top_dense = max(signals.dense.values(), default=0.0)
    top_lexical = max(signals.lexical.values(), default=0.0) or 1.0
    out = np.zeros((len(fused), len(FEATURES)))
    for i, f in enumerate(fused):
        row = rows.get(f.id)
        text = row.text if row is not None else ""
        words = query_terms(text)
        have = set(words)
        dense = signals.dense.get(f.id)
        lexical = signals.lexical.get(f.id)
        out[i] = (
            f.score / top_score,
            1.0 / (i + 1),
            1.0 / (10 + f.ranks["dense"]) if "dense" in f.ranks else 0.0,
            1.0 / (10 + f.ranks["lexical"]) if "lexical" in f.ranks else 0.0,
            dense if dense is not None else 0.0,
            (dense - top_dense) if dense is not None else -1.0,
            dense is not None,
            (lexical / top_lexical) if lexical is not None else 0.0,
            lexical is not None,
            sum(t in have for t in content) / len(content) if content else 0.0,
            len(stems & {w[:5] for w in have}) / len(stems) if stems else 0.0,
            f.id in signals.named,
            bool(text) and is_question(text),
            math.log1p(len(words)),
        )
    return out


@dataclass(frozen=True)
class LinearReranker:
    """A logistic model over standardized ``FEATURES``; larger scores rank first."""

    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    coef: NDArray[np.float64]
    intercept: float
    about: Mapping[str, Any]

    def scores(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The model's log-odds of relevance for each row of ``x``."""
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def rerank(
        self, query: str, fused: Sequence[Fused], rows: Mapping[str, Memory], signals: Signals
    ) -> list[Fused]:
        """``fused`` reordered by the model's scores (ties keep the fused order)."""
        if len(fused) < 2:
            return list(fused)
        s = self.scores(features(query, fused, rows, signals))
        order = sorted(range(len(fused)), key=lambda i: (-s[i], i))
        return [fused[i] for i in order]

    def save(self, path: Path) -> None:
        """Write the model, with ``FEATURES`` and ``about`` (how it was trained)."""
        np.savez(
            path,
            features=np.array(FEATURES),
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            intercept=np.array([self.intercept]),
            about=np.array(json.dumps(dict(self.about), sort_keys=True)),
        )

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> LinearReranker:
        """Read a model :meth:`save` wrote; refuse one trained on other features."""
        with np.load(path, allow_pickle=False) as data:
            names = tuple(str(n) for n in data["features"])
            if names != FEATURES:
                raise ValueError(
                    f"{path} was trained on features {names}, this code computes {FEATURES}: "
                    "retrain it (python -m evals.rerank_train)"
                )
            return cls(
                mean=data["mean"],
                scale=data["scale"],
                coef=data["coef"],
                intercept=float(data["intercept"][0]),
                about=json.loads(str(data["about"])),
            )


@cache
def shipped() -> LinearReranker:
    """The reranker shipped with this package (loaded once)."""
    return LinearReranker.load(WEIGHTS)
