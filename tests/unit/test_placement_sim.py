"""The placement simulation's behaviour on small populations (the figures are the bench's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evals.bench.placement import (
    Population,
    adapter_stream,
    home_replicas,
    plan,
    replica_slice,
    simulate,
)

SMALL = Population(users=2000, groups=40, own_share=0.05, zipf_s=1.0)


def test_the_stream_is_deterministic_and_the_active_users_bring_their_own_adapters() -> None:
    stream = adapter_stream(SMALL, 20_000, seed=3)
    assert np.array_equal(stream, adapter_stream(SMALL, 20_000, seed=3))
    own = int(SMALL.users * SMALL.own_share)
    assert stream.min() >= 0 and stream.max() < own + SMALL.groups
    assert 0.4 < float(np.mean(stream < own)) < 0.9  # Zipf: the top 5% send most requests


def test_each_adapter_has_one_home_replica_and_homes_are_spread() -> None:
    adapters = np.arange(1000)
    homes = home_replicas(adapters, 4)
    assert np.array_equal(homes, home_replicas(adapters, 4))
    assert min(np.bincount(homes, minlength=4)) > 150
    # Adding a replica moves only the adapters the new one wins (rendezvous hashing).
    grown = home_replicas(adapters, 5)
    assert np.all(grown[grown != homes] == 4)


def test_room_for_every_adapter_means_only_first_loads_miss() -> None:
    stream = adapter_stream(SMALL, 10_000)
    whole = simulate(stream, replicas=2, capacity=10_000, routing="affinity", warmup=0.0)
    assert whole.requests - whole.hits == len(np.unique(stream))


def test_affinity_beats_spreading_requests_when_slots_are_scarce() -> None:
    stream = adapter_stream(SMALL, 20_000)
    near = simulate(stream, replicas=4, capacity=20, routing="affinity")
    far = simulate(stream, replicas=4, capacity=20, routing="spread")
    assert near.hit_rate > far.hit_rate
    assert near.distinct_per_batch <= far.distinct_per_batch


def test_the_plan_names_the_smallest_sweep_entry_that_meets_both_limits() -> None:
    figures = plan(
        SMALL, requests=20_000, capacities=(5000,), replica_counts=(1, 2, 4),
        rps=100, replica_rps=30, min_hit=0.5,
    )  # fmt: skip
    assert figures["replicas_needed"]["affinity@5000"] == 4  # 100/4 ≤ 30; 100/2 > 30
    assert len(figures["rows"]) == 6


def test_the_bench_command_prints_the_plan_and_refuses_bad_lists(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    out = tmp_path / "plan.json"
    args = ["bench", "placement", "--users", "2000", "--groups", "20", "--requests", "5000"]
    ok = runner.invoke(app, [*args, "--capacities", "10", "--replicas", "1,2", "--json", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "replicas needed" in ok.output and len(json.loads(out.read_text())["rows"]) == 4
    bad = runner.invoke(app, [*args, "--replicas", "two"])
    assert bad.exit_code == 2 and "whole numbers" in bad.output


def test_a_replica_slice_holds_only_adapters_homed_on_that_replica() -> None:
    ids = replica_slice(SMALL, replicas=4, requests=200, seed=1)
    assert len(ids) == 200 and ids == replica_slice(SMALL, replicas=4, requests=200, seed=1)
    assert np.all(home_replicas(np.array(sorted(set(ids))), 4) == 0)
    assert len(set(ids)) < len(ids)  # Zipf: adapters repeat within a replica's traffic


def test_realistic_names_map_distinct_ids_in_order_and_wrap() -> None:
    from evals.bench.serving import realistic_names

    assert realistic_names([7, 3, 7, 9, 5], ["a", "b", "c"]) == ["a", "b", "a", "c", "a"]
