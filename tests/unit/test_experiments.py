"""Experiments, pure parts: sticky weighted assignment, what an arm changes, the statistics
and the guard rail."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from evals.experiment_stats import GuardRail, arm_reports, guard_verdicts
from graph.config import GraphSettings
from graph.experiments import (
    Arm,
    ArmSettings,
    Assignment,
    adapters_for,
    assignments,
    bucket,
    choose_arm,
    conflicts,
    generation_params,
    graph_settings,
    merged,
)
from graph.state import GenerationParams
from memory.records.experiment_rows import ExposedTurn

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@dataclass
class Exp:
    id: str
    name: str
    arms: list[dict[str, Any]]
    eligibility: dict[str, Any] = field(default_factory=dict)
    stopped_arms: dict[str, Any] = field(default_factory=dict)
    starts_at: datetime = NOW - timedelta(days=1)
    ends_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


def _arms(*spec: tuple[str, float, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": n, "weight": w, "settings": s} for n, w, s in spec]


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    arms = [Arm(name="a", weight=1), Arm(name="b", weight=3)]
    users = [f"usr_{i}" for i in range(20_000)]
    first = [choose_arm("exp_1", u, arms).name for u in users]
    assert first == [choose_arm("exp_1", u, arms).name for u in users]  # same every time
    share_b = first.count("b") / len(first)
    assert abs(share_b - 0.75) < 0.015
    # Another experiment splits the same users independently of this one.
    other = [choose_arm("exp_2", u, arms).name for u in users]
    both_b = sum(x == y == "b" for x, y in zip(first, other, strict=True)) / len(users)
    assert abs(both_b - 0.75 * 0.75) < 0.015
    assert 0 <= bucket("exp_1", "usr_1") < 1


def test_assignments_respect_eligibility_schedule_and_stopped_arms() -> None:
    arms = _arms(("control", 1, {}), ("short", 1, {"max_tokens": 8}))
    everyone = Exp("exp_a", "a", arms)
    listed = Exp("exp_b", "b", _arms(("c", 1, {}), ("t", 1, {"temperature": 0.1})))
    listed.eligibility = {"users": ["usr_1"]}
    grouped = Exp("exp_c", "c", _arms(("c", 1, {}), ("k", 1, {"recall_k": 0})))
    grouped.eligibility = {"group": "grp_x"}
    later = Exp("exp_d", "d", arms, starts_at=NOW + timedelta(hours=1))
    over = Exp("exp_e", "e", arms, ends_at=NOW - timedelta(hours=1))
    running = [everyone, listed, grouped, later, over]
    got = assignments(running, "usr_1", "grp_x", NOW)
    assert [a["name"] for a in got] == ["a", "b", "c"]
    assert [a["name"] for a in assignments(running, "usr_2", None, NOW)] == ["a"]
    arm = got[0]["arm"]
    everyone.stopped_arms = {arm: {"at": NOW.isoformat(), "reason": "guard"}}
    assert "a" not in [a["name"] for a in assignments(running, "usr_1", "grp_x", NOW)]


def _assigned(settings: dict[str, Any], name: str = "e") -> Assignment:
    return Assignment(experiment_id=f"exp_{name}", name=name, arm="x", settings=settings)


def test_an_arm_overrides_settings_but_never_what_the_client_sent() -> None:
    arm = merged(
        [
            _assigned({"prompt_version": "v2", "recall_k": 0, "temperature": 0.2}),
            _assigned({"max_tokens": 16, "model": "attune-base"}, "f"),
        ]
    )
    graph = graph_settings(GraphSettings(), arm)
    assert graph.version_of("system") == "v2" and graph.recall_k == 0
    assert GraphSettings().recall_k == 4  # the base settings are untouched
    params = GenerationParams(model="attune", max_tokens=256, temperature=0.9, top_p=1.0, sent=[])
    out = generation_params(params, arm, ["temperature"])
    assert out["temperature"] == 0.9  # the client sent it
    assert out["max_tokens"] == 16 and out["model"] == "attune-base"
    pinned = GenerationParams(model="usr_1-sft-v1", max_tokens=256)
    assert generation_params(pinned, arm, [])["model"] == "usr_1-sft-v1"


def test_adapter_arms_never_serve_another_owners_adapter() -> None:
    pin = ArmSettings(adapter="grp_x-sft-v2")
    mine = adapters_for(
        pin, user_id="usr_1", group_id="grp_x", adapter="usr_1-sft-v3", group_adapter="grp_x-sft-v1"
    )
    assert mine == ("grp_x-sft-v2", "grp_x-sft-v1")
    theirs = adapters_for(
        pin, user_id="usr_2", group_id="grp_y", adapter=None, group_adapter="grp_y-sft-v1"
    )
    assert theirs == (None, "grp_y-sft-v1")
    off = adapters_for(
        ArmSettings(adapters="off"),
        user_id="usr_1",
        group_id="grp_x",
        adapter="usr_1-sft-v3",
        group_adapter="grp_x-sft-v1",
    )
    assert off == (None, None)


def test_arm_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ArmSettings.model_validate({"temprature": 0.1})
    with pytest.raises(ValidationError, match="model must be one of"):
        ArmSettings.model_validate({"model": "gpt-4"})
    with pytest.raises(ValidationError):
        Arm.model_validate({"name": "a b", "weight": 1})
    with pytest.raises(ValidationError):
        Arm.model_validate({"name": "a", "weight": 0})


def test_two_experiments_may_not_vary_one_setting() -> None:
    new = [Arm(name="c", weight=1), Arm(name="t", weight=1, settings=ArmSettings(top_p=0.5))]
    running = {
        "sys": [Arm(name="c", weight=1), Arm(name="p", weight=1, settings=ArmSettings(top_p=0.9))],
        "other": [Arm(name="c", weight=1, settings=ArmSettings(recall_k=2))],
    }
    assert conflicts(new, running) == {"sys": {"top_p"}}
    versions = [Arm(name="v", weight=1, settings=ArmSettings(prompt_version="v2"))]
    by_name = [Arm(name="w", weight=1, settings=ArmSettings(prompt_versions={"system": "v3"}))]
    assert conflicts(versions, {"x": by_name}) == {"x": {"prompt:system"}}


def _rows(arm: str, users: int, rate: float, seed: int, *, latency: float = 100.0) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for u in range(users):
        for _ in range(rng.randint(1, 6)):
            out.append(
                ExposedTurn(
                    arm=arm,
                    user_id=f"{arm}-{u}",
                    failed=False,
                    recorded=True,
                    ttft_ms=latency / 4,
                    latency_ms=latency * rng.uniform(0.5, 1.5),
                    tokens=20,
                    thumbs_up=rng.random() < rate,
                )
            )
    return out


def test_a_real_difference_is_found_and_no_difference_is_not() -> None:
    rows = [
        *_rows("control", 300, 0.3, 1),
        *_rows("better", 300, 0.5, 2),
        *_rows("same", 300, 0.3, 3),
    ]
    reports = {r.arm: r for r in arm_reports(rows, ["control", "better", "same"], "control")}
    up = reports["better"].metrics["thumbs_up_rate"]
    assert up.diff is not None and up.diff_ci is not None and up.p_value is not None
    assert up.diff_ci[0] > 0 and up.p_value < 0.01
    assert up.ci is not None and up.ci[0] < up.value < up.ci[1]  # type: ignore[operator]
    same = reports["same"].metrics["thumbs_up_rate"]
    assert same.diff_ci is not None and same.diff_ci[0] < 0 < same.diff_ci[1]
    assert reports["control"].metrics["thumbs_up_rate"].diff is None
    assert reports["control"].users == 300
    assert reports["control"].metrics["tokens"].value == 20


def test_users_not_turns_are_resampled() -> None:
    # One user with many turns: a turn-level interval would be narrow, a user-level one is not.
    heavy = [ExposedTurn("a", "whale", False, True, 1.0, 1.0, 1, thumbs_up=True)] * 200
    light = [ExposedTurn("a", f"u{i}", False, True, 1.0, 1.0, 1) for i in range(10)]
    report = arm_reports([*heavy, *light], ["a"], "a")[0]
    ci = report.metrics["thumbs_up_rate"].ci
    assert ci is not None and ci[1] - ci[0] > 0.5


def test_the_guard_rail_stops_arms_worse_than_control_by_its_margins() -> None:
    def failing(arm: str, n: int, failures: int, latency: float) -> list[ExposedTurn]:
        return [
            ExposedTurn(arm, f"{arm}{i}", i < failures, i >= failures, 5.0, latency, 10)
            for i in range(n)
        ]

    rows = [
        *failing("control", 40, 1, 100.0),
        *failing("errors", 40, 8, 100.0),
        *failing("slow", 40, 1, 180.0),
        *failing("fine", 40, 2, 120.0),
        *failing("young", 10, 9, 100.0),  # too few turns to judge
    ]
    reports = arm_reports(rows, ["control", "errors", "slow", "fine", "young"], "control")
    verdicts = guard_verdicts(reports, "control", GuardRail(min_turns=30))
    assert set(verdicts) == {"errors", "slow"}
    assert verdicts["errors"].startswith("error rate 0.200 exceeds control's 0.025")
    assert "latency p95" in verdicts["slow"]
