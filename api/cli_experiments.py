"""``attune experiments``: create, list, show (per-arm metrics) and stop A/B tests.

They work on the records database directly, as ``POST /v1/experiments`` does; a running
server applies a new or stopped experiment within ``ATTUNE_EXPERIMENTS__REFRESH_S``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

experiments_app = typer.Typer(
    help="A/B tests on live traffic: arms, sticky assignment, per-arm metrics.",
    no_args_is_help=True,
)

SPEC_HELP = """A JSON file (or - for stdin) with the body of POST /v1/experiments, e.g.
{"name": "short-replies", "control": "control", "arms": [{"name": "control", "weight": 1},
{"name": "short", "weight": 1, "settings": {"max_tokens": 64}}]}"""


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _open() -> tuple[Any, Any]:
    from memory.records.db import open_engine
    from wiring.settings import load_settings

    settings = load_settings()
    return settings, open_engine(settings.db)


@experiments_app.command("create")
def create(spec: Annotated[str, typer.Argument(help=SPEC_HELP)]) -> None:
    """Create an experiment from a JSON spec; prints its id."""
    from pydantic import ValidationError

    from api.errors import APIError
    from api.experiments import ExperimentCreate
    from api.experiments import create as create_experiment
    from graph.prompts import PromptLibrary

    try:
        text = sys.stdin.read() if spec == "-" else Path(spec).read_text(encoding="utf-8")
        body = ExperimentCreate.model_validate_json(text)
    except OSError as exc:
        _fail(f"cannot read {spec}: {exc.strerror}")
        return
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        _fail(f"invalid spec at {where or 'top level'}: {first['msg']}")
        return
    _, engine = _open()
    try:
        row = create_experiment(engine, PromptLibrary(), body)
    except APIError as exc:
        _fail(str(exc))
        return
    typer.echo(f"created {row.id} ({row.name}): {len(body.arms)} arms, control {row.control}")


@experiments_app.command("list")
def list_() -> None:
    """Every experiment, newest first."""
    from memory.records import experiments as records
    from memory.records.tables import utcnow

    _, engine = _open()
    rows = records.list_experiments(engine)
    if not rows:
        typer.echo("no experiments")
    now = utcnow()
    for r in rows:
        arms = ", ".join(f"{a['name']}×{a['weight']:g}" for a in r.arms)
        typer.echo(f"{r.id}  {r.name:<24} {r.state(now):<9} control={r.control}  arms: {arms}")


def _fmt(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "—"
    interval = f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci is not None else ""
    return f"{value:.4g}{interval}"


@experiments_app.command("show")
def show(
    experiment: Annotated[str, typer.Argument(help="The experiment's id or name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-arm metrics with 95% intervals, and each arm's difference to control."""
    from api.experiments import report
    from api.routes.experiments import experiment_out, metrics_out
    from evals.experiment_stats import METRICS
    from memory.records import experiments as records

    settings, engine = _open()
    row = records.get(engine, experiment)
    if row is None:
        _fail(f"no experiment {experiment!r}")
        return
    reports = report(engine, row, settings.experiments)
    if as_json:
        out = experiment_out(row).model_dump(mode="json")
        out["metrics"] = [m.model_dump(mode="json") for m in metrics_out(reports)]
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{row.name} ({row.id}): {experiment_out(row).state}, control {row.control}")
    for arm, stop in row.stopped_arms.items():
        typer.echo(f"  arm {arm} stopped at {stop['at']}: {stop['reason']}")
    for r in reports:
        typer.echo(
            f"\narm {r.arm}: {r.turns} turns from {r.users} users "
            f"({r.recorded} recorded, {r.failed} failed)"
        )
        for name in METRICS:
            e = r.metrics[name]
            line = f"  {name:<18} {_fmt(e.value, e.ci):<30}"
            if e.diff is not None:
                line += f" vs control {_fmt(e.diff, e.diff_ci)}  p={e.p_value:.3g}"
            typer.echo(line)
    typer.echo("\nintervals: 95%, users resampled (cluster bootstrap); p: two-sided")


@experiments_app.command("stop")
def stop(
    experiment: Annotated[str, typer.Argument(help="The experiment's id or name.")],
    reason: Annotated[str, typer.Option(help="Recorded with the stop.")] = "stopped by an admin",
) -> None:
    """Stop an experiment: every user gets the service's own settings from the next turn."""
    from memory.records import experiments as records

    _, engine = _open()
    row = records.get(engine, experiment)
    if row is None:
        _fail(f"no experiment {experiment!r}")
        return
    records.stop(engine, row.id, reason)
    typer.echo(f"stopped {row.id} ({row.name})")
