"""``attune eval list | runs | compare | report``: the suites and their stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evals.cli_support import JsonOut, write_json

if TYPE_CHECKING:
    from evals.runs import EvalRun


def _load(run_id: str) -> EvalRun:
    """A stored run by id, or a run file by path (a baseline kept in the repository)."""
    from evals.runs import RunNotFoundError, load, load_file

    try:
        if run_id.endswith(".json"):
            return load_file(Path(run_id))
        return load(run_id)
    except RunNotFoundError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def list_suites() -> None:
    """The registered suites: command, what they measure, what a case is."""
    from evals.suites import SUITES

    for s in SUITES.values():
        stored = f"runs stored, primary metric {s.primary}" if s.primary else "figures only"
        typer.echo(f"{s.name:<13} {s.command}")
        typer.echo(f"{'':<13} {s.measures}")
        typer.echo(f"{'':<13} case: {s.case}; {stored}")


def runs(
    suite: Annotated[str | None, typer.Option(help="Only runs of this suite.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="The newest N.")] = 20,
) -> None:
    """Stored runs, newest first: id, time, commit, dataset and the primary figure."""
    from evals.runs import list_runs, runs_dir

    found = list_runs(suite=suite)[:limit]
    if not found:
        typer.echo(f"no stored runs in {runs_dir()}")
        return
    for r in found:
        figure = r.aggregates.get(r.primary)
        shown = f"{r.primary} {figure:.4f}" if figure is not None else ""
        typer.echo(f"{r.id:<44} {r.created_at}  {r.commit:<18} {shown}  {r.dataset}")


def compare(
    run_a: Annotated[str, typer.Argument(help="The baseline: a run id or a run's .json file.")],
    run_b: Annotated[str, typer.Argument(help="The candidate: a run id or a .json file.")],
    fail_on_regression: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Exit 1 when the primary metric's mean over the shared cases gets worse by "
            "more than this (absolute, e.g. 0.02; worse is lower, or higher for a metric "
            "where lower is better, such as tokens).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Flips and changes listed.")] = 20,
    json_path: JsonOut = None,
) -> None:
    """Compare two stored runs: B (candidate) against A (baseline).

    Per-case deltas, aggregate deltas with paired bootstrap 95% intervals, and the cases
    whose verdict flipped.
    """
    from evals.compare import compare as compare_runs

    a, b = _load(run_a), _load(run_b)
    result = compare_runs(a, b)
    write_json(
        json_path,
        {
            "a": a.id,
            "b": b.id,
            "metrics": [
                {"name": m.name, "a": m.a, "b": m.b, "delta": m.delta, "ci95": list(m.ci95)}
                for m in result.metrics
            ],
            "flips": [{"id": c.id, "flip": c.flipped, "delta": c.delta} for c in result.flips],
            "only_a": result.only_a,
            "only_b": result.only_b,
        },
    )
    typer.echo(result.table(limit=limit))
    if fail_on_regression is not None and result.regressed(fail_on_regression):
        primary = result.primary
        assert primary is not None
        typer.echo(
            f"REGRESSION: {a.primary} {primary.a:.4f} -> {primary.b:.4f} "
            f"({primary.delta:+.4f}, worse by more than {fail_on_regression}"
            f"{'; lower is better' if a.lower_is_better else ''})",
            err=True,
        )
        raise typer.Exit(1)


def report(
    run_ids: Annotated[
        list[str], typer.Argument(help="Run ids or .json files; the first is the baseline.")
    ],
    html: Annotated[Path, typer.Option("--html", help="Write the report to this file.")],
) -> None:
    """Write a self-contained HTML report of stored runs.

    The figures, plots, a filterable per-case table and, against the first run, the flips
    highlighted.
    """
    from evals.report_html import render

    loaded = [_load(r) for r in run_ids]
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(render(loaded), encoding="utf-8")
    typer.echo(f"report written to {html}")
