"""Rank fusion for hybrid retrieval (pure).

Reciprocal-rank fusion: each retriever votes ``weight / (rrf_k + rank)`` for the items it
ranked; scores add up. It needs no score calibration between retrievers, which is why it
is the usual choice for mixing dense and lexical results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Fused:
    """An item, its fused score and the 1-based rank each retriever gave it."""

    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]],
    weights: Mapping[str, float],
    *,
    rrf_k: int = 60,
) -> list[Fused]:
    """Fuse ``rankings`` (retriever name → ids, best first) into one list, best first.

    Ties are broken by the best single rank, then by id, so the order is deterministic.
    """
    fused: dict[str, Fused] = {}
    for name, ids in rankings.items():
        weight = weights.get(name, 1.0)
        if weight <= 0:
            continue
        for rank, item in enumerate(ids, start=1):
            entry = fused.setdefault(item, Fused(item, 0.0))
            if name in entry.ranks:
                continue  # a retriever listing an id twice votes once
            entry.ranks[name] = rank
            entry.score += weight / (rrf_k + rank)
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))
