"""Offline replay of an experiment's arms on the preference suite (a small slice)."""

from __future__ import annotations

from pathlib import Path

from evals.replay import replay
from graph.experiments import Arm, ArmSettings
from tests.conftest import ADMIN_KEY, MODEL_CACHE
from wiring.settings import Settings


async def test_each_arm_runs_on_the_same_users_and_is_compared_with_control(
    backend, tmp_path: Path
) -> None:
    def settings_for_arm(name: str) -> Settings:  # each arm imports into its own stores
        return Settings(
            data_dir=tmp_path / name,
            admin_key=ADMIN_KEY,
            model={"cache_dir": MODEL_CACHE},
            worker={"embedded": True, "poll_interval_s": 0.05},  # distillation runs
        )

    starved = ArmSettings(recall_k=0, memory_token_budget=0, known_token_budget=0, temperature=0.1)
    arms = [Arm(name="control", weight=1), Arm(name="starved", weight=1, settings=starved)]
    runs, comparisons = await replay(
        settings_for_arm,
        experiment="budgets",
        arms=arms,
        control="control",
        users=1,
        splits=("report",),
        backend=backend,
    )
    by_arm = {r.arm: r for r in runs}
    assert [r.run.settings["arm"] for r in runs] == ["control", "starved"]
    assert {r.run.settings["experiment"] for r in runs} == {"budgets"}
    assert by_arm["starved"].unexercised == ["temperature"]  # the suite scores prompts only
    assert by_arm["control"].unexercised == []
    assert by_arm["starved"].run.settings["graph"]["recall_k"] == 0
    control, starved_run = by_arm["control"].run, by_arm["starved"].run
    assert {c.id for c in control.cases} == {c.id for c in starved_run.cases}  # same users
    assert starved_run.aggregates["surfaced"] < control.aggregates["surfaced"]
    (comparison,) = comparisons
    assert comparison.regressed(0.05) and comparison.flips
