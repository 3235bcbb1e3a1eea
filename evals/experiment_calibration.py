"""How honest the experiments' statistics are: simulated A/A and A/B tests.

``python -m evals.experiment_calibration [--experiments 200]`` simulates experiments whose
truth is known: 200 users per arm, each with their own thumbs-up propensity (so their turns
are correlated, as real users' are) and 1-8 turns. With no true difference, a test at 5%
should call about 5% of experiments significant; the 95% interval of the difference should
cover the truth in about 95% of them. It prints both, and the power at a true difference.
"""

from __future__ import annotations

import argparse
import random

from evals.experiment_stats import arm_reports
from memory.records.experiment_rows import ExposedTurn


def simulate(
    seed: int, effect: float, *, users: int = 200, rounds: int = 500
) -> tuple[float, bool]:
    """One simulated experiment.

    Returns:
        The p-value of the thumbs-up difference, and whether its 95% interval covers
        ``effect``.
    """
    rng = random.Random(seed)
    rows = []
    for arm in ("control", "b"):
        for u in range(users):
            p = rng.betavariate(2, 6) + (effect if arm == "b" else 0.0)
            for _ in range(rng.randint(1, 8)):
                rows.append(
                    ExposedTurn(arm, f"{arm}{u}", False, True, 10.0, 100.0, 20, rng.random() < p)
                )
    est = arm_reports(rows, ["control", "b"], "control", rounds=rounds, seed=seed)[1]
    m = est.metrics["thumbs_up_rate"]
    assert m.p_value is not None and m.diff_ci is not None
    return m.p_value, m.diff_ci[0] <= effect <= m.diff_ci[1]


def main() -> None:
    """Print the false-positive rate, coverage and power."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--effect", type=float, default=0.08)
    args = parser.parse_args()
    for effect in (0.0, args.effect):
        results = [simulate(s, effect) for s in range(args.experiments)]
        significant = sum(p < 0.05 for p, _ in results) / len(results)
        covered = sum(c for _, c in results) / len(results)
        label = "false positives" if effect == 0 else "power"
        print(
            f"true difference {effect:.2f}: p<0.05 in {significant:.3f} ({label}; nominal "
            f"{'0.05' if effect == 0 else '-'}), 95% interval covered the truth in "
            f"{covered:.3f} of {len(results)} simulated experiments"
        )


if __name__ == "__main__":
    main()
