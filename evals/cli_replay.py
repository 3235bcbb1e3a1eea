"""``attune eval replay EXPERIMENT``: an experiment's arms on the preference suite, offline."""

from __future__ import annotations

from typing import Annotated

import typer

from evals.cli_support import DataDir


def replay(
    experiment: Annotated[str, typer.Argument(help="The experiment's id or name.")],
    users: Annotated[int, typer.Option(min=1, help="Synthetic users per split.")] = 1,
    split: Annotated[
        list[str] | None,
        typer.Option(help="Suite split (repeatable): report, seen3, seen2, seen, tune."),
    ] = None,
    fail_on_regression: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Exit 1 when an arm's surfaced rate is lower than control's "
            "by more than this (absolute).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Replay an experiment's arms on the preference suite before it goes live.

    Reads the arms from the records database (ATTUNE_DB__URL / the data directory), runs
    the suite once per arm on the same synthetic users with the arm's prompt version,
    recall and budget settings, stores each run (tagged with experiment and arm) and prints
    each arm against control: per-case deltas, paired bootstrap intervals and flips.
    """  # fmt: skip
    import asyncio

    from evals.cli_support import model_settings, settings_for, workdir
    from evals.replay import replay as run_replay
    from evals.suites import record
    from evals.suites.preferences.suite import SPLITS
    from graph.experiments import Arm
    from memory.records import experiments as records
    from memory.records.db import open_engine
    from wiring.settings import Settings, load_settings

    chosen = [s for s in SPLITS if s in (split or ["report"])]
    unknown = sorted(set(split or ()) - set(SPLITS))
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}; one of {list(SPLITS)}", param_hint="--split")
    row = records.get(open_engine(load_settings().db), experiment)
    if row is None:
        typer.echo(f"error: no experiment {experiment!r}", err=True)
        raise typer.Exit(2)
    arms = [Arm.model_validate(a) for a in row.arms]
    with workdir(data_dir) as work:

        def settings_for_arm(name: str) -> Settings:
            settings = settings_for(work / f"arm-{name}")
            return settings.model_copy(update={"model": model_settings()})

        runs, comparisons = asyncio.run(
            run_replay(
                settings_for_arm,
                experiment=row.name,
                arms=arms,
                control=row.control,
                users=users,
                splits=chosen,
            )
        )
    for r in runs:
        typer.echo(f"arm {r.arm}: surfaced {r.run.aggregates['surfaced']:.3f}")
        record(r.run)
        if r.unexercised:
            typer.echo(f"  not exercised by this suite: {', '.join(r.unexercised)}")
    regressed = False
    for c in comparisons:
        typer.echo("")
        typer.echo(c.table())
        if fail_on_regression is not None and c.regressed(fail_on_regression):
            typer.echo(f"REGRESSION: arm {c.b.settings['arm']} against control", err=True)
            regressed = True
    if regressed:
        raise typer.Exit(1)
