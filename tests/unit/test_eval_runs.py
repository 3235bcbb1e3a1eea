"""Stored eval runs, their comparison and the HTML report (on small hand-made runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import eval_app
from evals.compare import compare
from evals.report_html import render
from evals.runs import CaseResult, EvalRun, RunNotFoundError, list_runs, load, save


def _run(scores: dict[str, float], *, suite: str = "memory", primary: str = "recall@10") -> EvalRun:
    cases = [
        CaseResult(case, {primary: v, "other": 1.0}, v == 1.0, f"question {case} <b>bold</b>")
        for case, v in scores.items()
    ]
    mean = sum(scores.values()) / len(scores)
    return EvalRun(suite, "memory_v1", {primary: mean}, cases, primary, settings={"k": 10})


def test_a_run_is_saved_with_id_time_and_commit_and_reads_back(tmp_path: Path) -> None:
    run = save(_run({"q1": 1.0, "q2": 0.5}), tmp_path)
    assert run.id.startswith("memory-") and run.created_at and run.commit
    back = load(run.id, tmp_path)
    assert back == run
    assert [r.id for r in list_runs(tmp_path)] == [run.id]
    assert list_runs(tmp_path, suite="locomo") == []
    (tmp_path / "notes.json").write_text("[1, 2]")  # not a run: ignored
    assert len(list_runs(tmp_path)) == 1


@pytest.mark.parametrize("bad", ["nope", "../etc/passwd", ""])
def test_an_unknown_run_id_says_where_it_looked_and_what_exists(tmp_path: Path, bad: str) -> None:
    run = save(_run({"q1": 1.0}), tmp_path)
    with pytest.raises(RunNotFoundError) as e:
        load(bad, tmp_path)
    assert str(tmp_path) in str(e.value) and run.id in str(e.value)


def test_compare_pairs_cases_by_id_and_finds_flips_and_the_paired_interval() -> None:
    a = _run({"q1": 1.0, "q2": 1.0, "q3": 0.5, "q4": 0.0, "gone": 1.0})
    b = _run({"q1": 1.0, "q2": 0.5, "q3": 1.0, "q4": 0.0, "new": 1.0})
    c = compare(a, b)
    assert [d.id for d in c.cases] == ["q1", "q2", "q3", "q4"]
    assert (c.only_a, c.only_b) == (["gone"], ["new"])
    assert [(f.id, f.flipped) for f in c.flips] == [("q2", "broken"), ("q3", "fixed")]
    primary = c.primary
    assert primary is not None and primary.delta == pytest.approx(0.0)
    assert primary.ci95[0] < 0 < primary.ci95[1]  # one up, one down: no clear change
    assert not c.regressed(0.01)
    worse = compare(a, _run({"q1": 0.0, "q2": 0.0, "q3": 0.0, "q4": 0.0}))
    assert worse.regressed(0.1) and not worse.regressed(0.9)
    assert "flipped: 2 (2 broken, 0 fixed)" in worse.table()


def test_runs_of_other_suites_or_datasets_are_compared_with_a_warning() -> None:
    other = _run({"q1": 1.0})
    other.dataset = "memory_v2"
    c = compare(_run({"q1": 1.0}), other)
    assert c.warnings == ["different datasets: memory_v1 vs memory_v2"]


def test_the_html_report_holds_the_plots_the_cases_and_the_flips_escaped() -> None:
    a = save_free(_run({"q1": 1.0, "q2": 1.0}), "memory-a")
    b = save_free(_run({"q1": 1.0, "q2": 0.0}), "memory-b")
    html = render([a, b])
    assert html.count("data:image/png;base64,") == 2  # aggregates, per-case changes
    assert '<tr class="broken" data-flip="broken">' in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'id="filter"' in html and "applyFilter" in html
    single = render([a])
    assert single.count("data:image/png;base64,") == 1


def save_free(run: EvalRun, run_id: str) -> EvalRun:
    run.id, run.created_at, run.commit = run_id, "2026-12-01T00:00:00+00:00", "abc"
    return run


def test_the_cli_compares_fails_on_regression_and_writes_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTUNE_EVAL_RUNS_DIR", str(tmp_path / "runs"))
    a = save(_run({"q1": 1.0, "q2": 1.0, "q3": 1.0}))
    b = save(_run({"q1": 1.0, "q2": 0.0, "q3": 1.0}))
    runner = CliRunner()
    listed = runner.invoke(eval_app, ["runs"])
    assert listed.exit_code == 0 and a.id in listed.output and b.id in listed.output
    ok = runner.invoke(eval_app, ["compare", a.id, b.id, "--json", str(tmp_path / "c.json")])
    assert ok.exit_code == 0, ok.output
    assert "broken  q2" in ok.output
    assert json.loads((tmp_path / "c.json").read_text())["flips"][0]["id"] == "q2"
    failed = runner.invoke(eval_app, ["compare", a.id, b.id, "--fail-on-regression", "0.1"])
    assert failed.exit_code == 1 and "REGRESSION" in failed.output
    unknown = runner.invoke(eval_app, ["compare", a.id, "missing-run"])
    assert unknown.exit_code == 2 and "no eval run 'missing-run'" in unknown.output
    written = runner.invoke(eval_app, ["report", a.id, b.id, "--html", str(tmp_path / "r.html")])
    assert written.exit_code == 0, written.output
    assert "Eval report: memory" in (tmp_path / "r.html").read_text()
    suites = runner.invoke(eval_app, ["list"])
    assert suites.exit_code == 0 and "attune eval locomo --data DIR" in suites.output


def test_for_a_lower_is_better_metric_a_rise_is_the_regression() -> None:
    a = _run({"cfg": 600.0}, suite="persona", primary="system_tokens")
    a.lower_is_better = True
    more = _run({"cfg": 700.0}, suite="persona", primary="system_tokens")
    fewer = _run({"cfg": 500.0}, suite="persona", primary="system_tokens")
    assert compare(a, more).regressed(50) and not compare(a, fewer).regressed(50)


def test_the_adapters_and_persona_figures_become_runs_with_one_case_each() -> None:
    from evals.suites import adapters_run, persona_run
    from evals.suites.adapters.suite import AdaptersReport, UserResult

    sft = {"heldout_ppl_change_vs_base": -0.3, "general_ppl_change": 0.01, "passed": True}
    dpo = {
        "general_ppl_change": 0.02,
        "heldout_likelihood_accuracy": 0.8,
        "heldout_likelihood_accuracy_base": 0.5,
        "passed": False,
    }
    job = {"seconds": 12.0}
    user = UserResult("pirate", "talks like a pirate", 20, 5, 32, 8, sft, dpo, job, job)
    run = adapters_run(AdaptersReport("model", "cpu", [user]))
    assert [c.id for c in run.cases] == ["pirate"] and not run.cases[0].passed  # DPO failed
    assert run.aggregates["style_ppl_drop"] == pytest.approx(0.3)
    persona = persona_run(
        {
            "prompt_version": "v4",
            "instructions": 10,
            "facts_offered": 50,
            "rows": {"bare": {"system_tokens": 100, "facts_kept": 0}},
        }
    )
    assert persona.lower_is_better and persona.prompts == {"system": "v4"}
    assert persona.cases[0].metrics == {"system_tokens": 100.0, "facts_kept": 0.0}
