"""Rank fusion for hybrid retrieval (pure).

Reciprocal-rank fusion: each retriever votes ``weight / (rrf_k + rank)`` for the items it
ranked; scores add up. It needs no score calibration between retrievers, which is why it
is the usual choice for mixing dense and lexical results. Priors (who said a memory,
whether it only asks a question) then move items by a fraction of a first-place vote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_SENTENCE = re.compile(r"[^.!?]*(?:[.!?]+|$)")


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


def is_question(text: str) -> bool:
    """Whether ``text`` only asks (every sentence ends with ``?``): it states no fact."""
    sentences = [s for s in _SENTENCE.findall(text) if s.strip(" \t\n\"')]")]
    return bool(sentences) and all(s.rstrip(" \t\n\"')]").endswith("?") for s in sentences)


def apply_priors(
    fused: Sequence[Fused], priors: Mapping[str, float], *, unit: float
) -> list[Fused]:
    """Add each item's prior, in units of ``unit``, and re-sort (ties as in the fusion).

    A prior is evidence about a memory that no retriever sees: who said it, whether it
    only asks. ``unit`` is the vote of a retriever's first place (``weight / (rrf_k +
    1)``), so a prior of 0.5 is worth half a first place.
    """
    out = [Fused(f.id, f.score + priors.get(f.id, 0.0) * unit, dict(f.ranks)) for f in fused]
    return sorted(out, key=lambda f: (-f.score, min(f.ranks.values(), default=0), f.id))


def spread_to_neighbours(
    fused: Sequence[Fused], neighbours: Mapping[str, Sequence[str]], *, weight: float
) -> list[Fused]:
    """Give each item's neighbours ``weight`` times its score, and re-sort.

    Evidence in a conversation comes in runs of turns: the turn next to a good match
    often holds the rest of the answer ("Yes, twice!" after "Have you been?"). A
    neighbour no retriever found enters with the rank ``context`` of the item that
    brought it.
    """
    out = {f.id: Fused(f.id, f.score, dict(f.ranks)) for f in fused}
    for rank, f in enumerate(fused, start=1):
        for n in neighbours.get(f.id, ()):
            entry = out.setdefault(n, Fused(n, 0.0, {}))
            entry.score += weight * f.score
            entry.ranks.setdefault("context", rank)
    return sorted(out.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))


def memory_prior(speaker: str | None, text: str, *, user_said: float, question: float) -> float:
    """The prior of one memory, for :func:`apply_priors`.

    ``user_said`` if the user said it, minus ``question`` if it only asks (a question the
    user asked holds no answer about them).
    """
    prior = user_said if speaker == "user" else 0.0
    return prior - question if is_question(text) else prior
