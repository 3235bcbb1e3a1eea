"""CI's eval slice: a suite runs and is compared against the baseline kept in the repository.

The figures are printed for reading, never asserted: a quality change is judged by a
person from the compare's output (or by ``--fail-on-regression`` where a team wants a
gate). What is asserted is that the slice runs, is stored, and still pairs case by case
with its baseline, so comparisons across commits stay possible.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from evals.cli import eval_app
from evals.runs import load_file

BASELINE = Path(__file__).resolve().parents[2] / "evals/baselines/instructions-rules-baseline.json"


def test_the_instruction_slice_runs_and_pairs_with_its_stored_baseline() -> None:
    runner = CliRunner()
    ran = runner.invoke(eval_app, ["instructions", "--detector", "rules"])
    assert ran.exit_code == 0, ran.output
    match = re.search(r"run id: (\S+)", ran.output)
    assert match is not None, ran.output
    compared = runner.invoke(eval_app, ["compare", str(BASELINE), match.group(1)])
    assert compared.exit_code == 0, compared.output
    print(compared.output)  # the figures, for the CI log
    baseline = load_file(BASELINE)
    assert re.search(rf"^{len(baseline.cases)} shared cases$", compared.output, re.M)
    assert "only in" not in compared.output  # every case id still matches the baseline
