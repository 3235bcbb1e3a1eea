"""Two stored runs of a suite, case by case: deltas, paired confidence intervals, flips.

``attune eval compare A B`` reads B as the candidate and A as the baseline. Cases are
paired by id (the suites keep ids stable run after run); the aggregate deltas printed are
over the shared cases, each with a paired bootstrap 95% interval (resampling cases, so a
difference that a few cases carry gets a wide interval). A case flipped when its verdict
(``passed``) changed. ``--fail-on-regression X`` fails when the primary metric's mean over
the shared cases dropped by more than ``X``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evals.runs import CaseResult, EvalRun
from evals.stats import paired_bootstrap


@dataclass(frozen=True)
class MetricDelta:
    """One metric's means over the shared cases in both runs, and their paired difference."""

    name: str
    a: float
    b: float
    ci95: tuple[float, float]

    @property
    def delta(self) -> float:
        """``b - a``."""
        return self.b - self.a


@dataclass(frozen=True)
class CaseDelta:
    """One shared case in both runs."""

    id: str
    a: CaseResult
    b: CaseResult
    primary: str

    @property
    def delta(self) -> float:
        """The primary metric's change (``b - a``)."""
        return self.b.metrics.get(self.primary, 0.0) - self.a.metrics.get(self.primary, 0.0)

    @property
    def flipped(self) -> str | None:
        """``fixed`` (failed in A, passes in B), ``broken`` (the reverse), or ``None``."""
        if self.a.passed == self.b.passed:
            return None
        return "fixed" if self.b.passed else "broken"


@dataclass
class Comparison:
    """Baseline ``a`` against candidate ``b``."""

    a: EvalRun
    b: EvalRun
    metrics: list[MetricDelta] = field(default_factory=list)
    cases: list[CaseDelta] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def primary(self) -> MetricDelta | None:
        """The delta of the baseline's primary metric (``None`` if the runs share no case)."""
        return next((m for m in self.metrics if m.name == self.a.primary), None)

    @property
    def flips(self) -> list[CaseDelta]:
        """Shared cases whose verdict changed, broken ones first."""
        flipped = [c for c in self.cases if c.flipped]
        return sorted(flipped, key=lambda c: (c.flipped != "broken", c.id))

    def regressed(self, threshold: float) -> bool:
        """Whether the primary metric's mean got worse by more than ``threshold``.

        Worse is lower, or higher for a suite whose primary metric is ``lower_is_better``.
        """
        primary = self.primary
        if primary is None:
            return False
        worse_by = primary.delta if self.a.lower_is_better else -primary.delta
        return worse_by > threshold

    def table(self, *, limit: int = 20) -> str:
        """The comparison as text: runs, aggregate deltas, flips and the largest changes."""
        a, b = self.a, self.b
        lines = [
            f"baseline  A {a.id}  ({a.suite}, dataset {a.dataset}, commit {a.commit}, "
            f"{a.created_at})",
            f"candidate B {b.id}  ({b.suite}, dataset {b.dataset}, commit {b.commit}, "
            f"{b.created_at})",
            *(f"warning: {w}" for w in self.warnings),
            "",
            f"{len(self.cases)} shared cases"
            + (f"; only in A: {len(self.only_a)}" if self.only_a else "")
            + (f"; only in B: {len(self.only_b)}" if self.only_b else ""),
            f"  {'metric':<28}{'A':>9}{'B':>9}{'B-A':>9}   95% CI (paired bootstrap)",
        ]
        for m in self.metrics:
            mark = "  (primary)" if m.name == a.primary else ""
            lines.append(
                f"  {m.name:<28}{m.a:>9.4f}{m.b:>9.4f}{m.delta:>+9.4f}   "
                f"[{m.ci95[0]:+.4f}, {m.ci95[1]:+.4f}]{mark}"
            )
        flips = self.flips
        broken = sum(c.flipped == "broken" for c in flips)
        lines += ["", f"flipped: {len(flips)} ({broken} broken, {len(flips) - broken} fixed)"]
        for c in flips[:limit]:
            lines.append(f"  {c.flipped:<7} {c.id}  {c.delta:+.3f}  {c.b.detail or c.a.detail}")
        if len(flips) > limit:
            lines.append(f"  … {len(flips) - limit} more")
        moved = sorted((c for c in self.cases if c.delta), key=lambda c: (c.delta, c.id))
        lines += ["", f"per-case {a.primary} deltas: {len(moved)} cases changed"]
        for c in (moved[: limit // 2] + moved[-(limit // 2) :]) if len(moved) > limit else moved:
            lines.append(f"  {c.delta:+.3f}  {c.id}  {c.b.detail or c.a.detail}")
        return "\n".join(lines)


def compare(a: EvalRun, b: EvalRun, *, seed: int = 0) -> Comparison:
    """Pair ``a``'s and ``b``'s cases by id and measure what changed.

    Runs of different suites are compared all the same (their shared case ids, if any),
    with a warning; so are runs on different dataset versions.
    """
    out = Comparison(a, b)
    if a.suite != b.suite:
        out.warnings.append(f"different suites: {a.suite} vs {b.suite}")
    if a.dataset != b.dataset:
        out.warnings.append(f"different datasets: {a.dataset} vs {b.dataset}")
    in_b = {c.id: c for c in b.cases}
    in_a = {c.id: c for c in a.cases}
    out.cases = [CaseDelta(c.id, c, in_b[c.id], a.primary) for c in a.cases if c.id in in_b]
    out.only_a = [i for i in in_a if i not in in_b]
    out.only_b = [i for i in in_b if i not in in_a]
    first = out.cases[0].a.metrics if out.cases else {}
    names = sorted(
        (n for n in first if all(n in c.b.metrics for c in out.cases)),
        key=lambda n: (n != a.primary, n),
    )
    for name in names:
        xs = [c.a.metrics.get(name, 0.0) for c in out.cases]
        ys = [c.b.metrics[name] for c in out.cases]
        n = len(xs)
        diffs = [y - x for x, y in zip(xs, ys, strict=True)]
        lo, hi = paired_bootstrap(diffs, seed=seed)
        out.metrics.append(MetricDelta(name, sum(xs) / n, sum(ys) / n, (lo, hi)))
    return out
