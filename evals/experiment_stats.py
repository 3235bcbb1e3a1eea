"""Per-arm metrics of a live experiment, with 95% intervals and tests against control.

The unit that was randomized is the user (``graph.experiments.bucket``), and one user's
turns are not independent of each other, so every interval and test here resamples
**users**, not turns (a cluster bootstrap): each round draws an arm's users with
replacement and recomputes the metric from all their turns. The difference to control
resamples both arms independently; its two-sided p-value is twice the smaller share of
rounds on either side of zero (at least ``1 / rounds``).

Rates are shares of the arm's recorded turns (the error rate: of its finished turns, failed
or recorded); ``ttft`` and ``latency`` are percentiles over recorded turns; ``tokens`` is
the mean completion length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from memory.records.experiment_rows import ExposedTurn

Array = NDArray[np.float64]

RATES: dict[str, Callable[[ExposedTurn], bool]] = {
    "thumbs_up_rate": lambda t: t.thumbs_up,
    "thumbs_down_rate": lambda t: t.thumbs_down,
    "edit_rate": lambda t: t.edited,
    "regeneration_rate": lambda t: t.regenerated,
    "follow_up_rate": lambda t: t.followed_up,
}
QUANTILES = {"ttft_p50_ms": ("ttft_ms", 50), "ttft_p95_ms": ("ttft_ms", 95)} | {
    "latency_p50_ms": ("latency_ms", 50),
    "latency_p95_ms": ("latency_ms", 95),
}
METRICS = ("error_rate", *RATES, *QUANTILES, "tokens")
"""Every metric, in the order reports show them."""


@dataclass(frozen=True)
class Estimate:
    """A metric of one arm: its value and 95% interval.

    Not for control: the difference to control, its interval and p-value.
    """

    value: float | None
    ci: tuple[float, float] | None
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class ArmReport:
    """One arm's counts and metrics."""

    arm: str
    turns: int
    users: int
    failed: int
    recorded: int
    metrics: dict[str, Estimate] = field(default_factory=dict)


class _Arm:
    """An arm's turns grouped by user, and bootstrap draws of its users."""

    def __init__(self, rows: Sequence[ExposedTurn], rounds: int, rng: np.random.Generator) -> None:
        users = sorted({r.user_id for r in rows})
        index = {u: i for i, u in enumerate(users)}
        self.rows = rows
        self.owner = np.array([index[r.user_id] for r in rows], dtype=np.int64)
        n = len(users)
        # weights[b, u]: how often user u was drawn in round b (row 0: the sample itself)
        draws = rng.multinomial(n, np.full(n, 1 / n), size=rounds) if n else np.zeros((rounds, 0))
        self.weights: Array = np.vstack([np.ones((1, n)), draws]).astype(np.float64)

    def per_user(self, values: Array, mask: NDArray[np.bool_]) -> tuple[Array, Array]:
        """Per-user sums of ``values`` and counts, over the turns in ``mask``."""
        n = self.weights.shape[1]
        sums = np.bincount(self.owner[mask], weights=values[mask], minlength=n).astype(np.float64)
        counts = np.bincount(self.owner[mask], minlength=n).astype(np.float64)
        return sums, counts

    def mean(self, values: Array, mask: NDArray[np.bool_]) -> Array | None:
        """The mean over ``mask``'s turns, for the sample (index 0) and every round."""
        sums, counts = self.per_user(values, mask)
        if counts.sum() == 0:
            return None
        num, den = self.weights @ sums, self.weights @ counts
        return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)

    def quantile(self, values: Array, mask: NDArray[np.bool_], q: float) -> Array | None:
        """The ``q``-th percentile over ``mask``'s turns, sample and rounds (weighted)."""
        if not mask.any():
            return None
        order = np.argsort(values[mask], kind="stable")
        sorted_values = values[mask][order]
        w = self.weights[:, self.owner[mask][order]]  # rounds × turns
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1:]
        picks = (cum < total * q / 100).sum(axis=1)
        out = sorted_values[np.minimum(picks, len(sorted_values) - 1)]
        return np.where(total[:, 0] > 0, out, np.nan)


def _metric(arm: _Arm, name: str) -> Array | None:
    rows = arm.rows
    recorded = np.array([r.recorded for r in rows], dtype=bool)
    if name == "error_rate":
        finished = np.array([r.recorded or r.failed for r in rows], dtype=bool)
        failed = np.array([r.failed for r in rows], dtype=np.float64)
        return arm.mean(failed, finished)
    if name in RATES:
        hit = RATES[name]
        return arm.mean(np.array([hit(r) for r in rows], dtype=np.float64), recorded)
    if name == "tokens":
        return arm.mean(np.array([r.tokens for r in rows], dtype=np.float64), recorded)
    attr, q = QUANTILES[name]
    values = np.array([getattr(r, attr) or 0.0 for r in rows], dtype=np.float64)
    has = recorded & np.array([getattr(r, attr) is not None for r in rows], dtype=bool)
    return arm.quantile(values, has, q)


def _interval(draws: Array) -> tuple[float, float] | None:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return (round(float(lo), 4), round(float(hi), 4))


def arm_reports(
    rows: Sequence[ExposedTurn],
    arms: Sequence[str],
    control: str,
    *,
    rounds: int = 1000,
    seed: int = 0,
) -> list[ArmReport]:
    """Every arm's metrics, in ``arms`` order.

    Each non-control arm is tested against ``control``.
    """
    rng = np.random.default_rng(seed)
    grouped = {a: _Arm([r for r in rows if r.arm == a], rounds, rng) for a in arms}
    draws = {a: {m: _metric(g, m) for m in METRICS} for a, g in grouped.items()}
    out = []
    for a, g in grouped.items():
        metrics = {}
        for m in METRICS:
            mine, base = draws[a][m], draws[control][m]
            if mine is None:
                metrics[m] = Estimate(None, None)
                continue
            est = Estimate(round(float(mine[0]), 4), _interval(mine[1:]))
            if a != control and base is not None:
                d = mine - base
                rest = d[1:][np.isfinite(d[1:])]
                p = 1.0
                if rest.size:
                    p = 2 * min(float((rest <= 0).mean()), float((rest >= 0).mean()))
                    p = max(min(p, 1.0), 1 / rest.size)
                est = Estimate(est.value, est.ci, round(float(d[0]), 4), _interval(d[1:]), p)
            metrics[m] = est
        out.append(
            ArmReport(
                arm=a,
                turns=len(g.rows),
                users=g.weights.shape[1],
                failed=sum(r.failed for r in g.rows),
                recorded=sum(r.recorded for r in g.rows),
                metrics=metrics,
            )
        )
    return out


@dataclass(frozen=True)
class GuardRail:
    """When an arm is stopped for doing worse than control."""

    min_turns: int = 30
    """Finished turns each of the arm and control needs before the guard judges."""
    error_margin: float = 0.05
    """Stop when the arm's error rate exceeds control's by more than this (absolute)."""
    latency_margin: float = 0.5
    """Stop when the arm's latency p95 exceeds control's by more than this share."""


def guard_verdicts(reports: Sequence[ArmReport], control: str, rail: GuardRail) -> dict[str, str]:
    """Arm → why it must stop, for the non-control arms past the guard rail's margins."""
    by_arm = {r.arm: r for r in reports}
    base = by_arm[control]
    if base.recorded + base.failed < rail.min_turns:
        return {}
    out = {}
    for r in reports:
        if r.arm == control or r.recorded + r.failed < rail.min_turns:
            continue
        err, base_err = r.metrics["error_rate"].value, base.metrics["error_rate"].value
        if err is not None and base_err is not None and err - base_err > rail.error_margin:
            out[r.arm] = (
                f"error rate {err:.3f} exceeds control's {base_err:.3f} "
                f"by more than {rail.error_margin:.3f}"
            )
            continue
        p95, base_p95 = r.metrics["latency_p95_ms"].value, base.metrics["latency_p95_ms"].value
        if p95 is not None and base_p95 and p95 > base_p95 * (1 + rail.latency_margin):
            out[r.arm] = (
                f"latency p95 {p95:.0f} ms exceeds control's {base_p95:.0f} ms "
                f"by more than {rail.latency_margin:.0%}"
            )
    return out
