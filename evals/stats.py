"""Small helpers for benchmark figures."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def paired_bootstrap(diffs: Sequence[float], *, rounds: int = 2000, seed: int = 0) -> list[float]:
    """95% interval of the mean of paired ``diffs`` (one per case), resampling cases.

    Cases are resampled with replacement, ``rounds`` times, the same draws for every call
    with the same ``seed``; an empty ``diffs`` gives ``[0.0, 0.0]``.
    """
    if not diffs:
        return [0.0, 0.0]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(rounds))
    return [round(percentile(means, 2.5), 4), round(percentile(means, 97.5), 4)]


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
