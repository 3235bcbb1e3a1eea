"""CI's eval slice: a suite runs and is compared against the baseline kept in the repository.

The figures are printed for reading, never asserted: a quality change is judged by a
person from the compare's output (or by ``--fail-on-regression`` where a team wants a
gate). What is asserted is that the slice runs, is stored, and still pairs case by case
with its baseline, so comparisons across commits stay possible.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import eval_app
from evals.runs import load_file

BASELINES = Path(__file__).resolve().parents[2] / "evals/baselines"


@pytest.mark.parametrize(
    ("command", "baseline"),
    [
        (["instructions", "--detector", "rules"], "instructions-rules-baseline.json"),
        (["persona"], "persona-baseline.json"),
    ],
)
def test_a_slice_runs_and_pairs_with_its_stored_baseline(command: list[str], baseline: str) -> None:
    stored = BASELINES / baseline
    runner = CliRunner()
    ran = runner.invoke(eval_app, command)
    assert ran.exit_code == 0, ran.output
    match = re.search(r"run id: (\S+)", ran.output)
    assert match is not None, ran.output
    compared = runner.invoke(eval_app, ["compare", str(stored), match.group(1)])
    assert compared.exit_code == 0, compared.output
    print(compared.output)  # the figures, for the CI log
    kept = load_file(stored)
    assert re.search(rf"^{len(kept.cases)} shared cases$", compared.output, re.M)
    assert "only in" not in compared.output  # every case id still matches the baseline
