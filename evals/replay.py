"""Offline replay: an experiment's arms on the preference suite, before it goes live.

``attune eval replay EXPERIMENT`` reads the experiment's arms from the records database,
runs the preference-surfacing suite once per arm on the same synthetic users (the served
stack, each arm's settings applied as ``load_context`` would apply them), stores each run
tagged with the experiment and arm, and compares every arm with control, case by case.

The suite scores the composed prompt, so it exercises what an arm changes there: the
system prompt's version, recall ``k`` and the token budgets. An arm's sampling, model and
adapter settings change only generation, which the suite does not score; the report says
so rather than letting two identical runs pass for a tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evals.compare import Comparison, compare
from evals.runs import EvalRun
from evals.suites import preferences_run
from evals.suites.preferences.data import Split
from evals.suites.preferences.suite import run as run_preferences
from graph.experiments import GRAPH_KEYS, Arm, ArmSettings, graph_settings
from wiring.settings import Settings

PROMPT_KEYS = {"prompt_version", "prompt_versions", *GRAPH_KEYS}
"""Arm settings the preference suite exercises (they shape the composed prompt)."""


@dataclass(frozen=True)
class ArmRun:
    """One arm's stored run, and the settings the suite could not exercise."""

    arm: str
    run: EvalRun
    unexercised: list[str]


def arm_settings(settings: Settings, arm: ArmSettings) -> Settings:
    """``settings`` with the arm's prompt, recall and budget settings."""
    return settings.model_copy(update={"graph": graph_settings(settings.graph, arm)})


async def replay(
    settings_for_arm: Callable[[str], Settings],
    *,
    experiment: str,
    arms: Sequence[Arm],
    control: str,
    users: int,
    splits: Sequence[Split],
    backend: Any = None,
) -> tuple[list[ArmRun], list[Comparison]]:
    """Run the suite per arm; compare each other arm with ``control``.

    Args:
        settings_for_arm: ``arm name -> Settings`` for a fresh data directory (each arm
            imports the same users into its own stores).
        experiment: The experiment's name, recorded on every run.
        arms: Its arms.
        control: The arm the others are compared with.
        users: Synthetic users per split.
        splits: The suite's splits to run.
        backend: Replaces the configured chat backend (tests).
    """
    runs: list[ArmRun] = []
    for arm in arms:
        settings = arm_settings(settings_for_arm(arm.name), arm.settings)
        report = await run_preferences(settings, users=users, splits=splits, backend=backend)
        stored = preferences_run(
            report,
            f"preference topics ({', '.join(splits)}), {users} users per split",
            {
                "experiment": experiment,
                "arm": arm.name,
                "arm_settings": arm.settings.model_dump(exclude_none=True),
                "graph": settings.graph.model_dump(mode="json"),
            },
        )
        stored.prompts = settings.graph.active_versions()
        unexercised = sorted(set(arm.settings.model_dump(exclude_none=True)) - PROMPT_KEYS)
        runs.append(ArmRun(arm.name, stored, unexercised))
    base = next(r for r in runs if r.arm == control)
    comparisons = [compare(base.run, r.run) for r in runs if r.arm != control]
    return runs, comparisons
