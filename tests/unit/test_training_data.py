"""Dataset snapshots (scrubbed, hashed, stored through fsspec), held-out splits,
hyper-parameter defaults and the gate's pure decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec
import pytest

from adapters.datasets import (
    PreferencePair,
    SFTExample,
    build_snapshot,
    read_snapshot,
    sample_example,
    split_held_out,
    write_snapshot,
)
from adapters.hparams import HParams, defaults_for, with_overrides
from adapters.quality_gate import (
    GateThresholds,
    gate_dpo,
    gate_sft,
    general_texts,
    implicit_reward_accuracy,
    likelihood_accuracy,
)

PROMPT = ({"role": "user", "content": "Where should I send it? I'm at bob@example.com"},)


def _data() -> tuple[list[SFTExample], list[PreferencePair]]:
    sft = [
        SFTExample(PROMPT, "Send it to 12 Elm Street, or call 415-555-0101.", "edited", "turn_b"),
        SFTExample(PROMPT, "Sure thing!", "accepted", "turn_a"),
        sample_example("smp_1", "My card 4111 1111 1111 1111 and password=swordfish."),
    ]
    pairs = [PreferencePair(PROMPT, "Arr, bob@example.com!", "Hello.", "turn_a")]
    return sft, pairs


def test_snapshot_is_scrubbed_before_anything_is_written(tmp_path: Path):
    sft, pairs = _data()
    snap = build_snapshot(
        owner_kind="user", owner_id="usr_1", sft=sft, pairs=pairs, source_turn_ids=["turn_a"]
    )
    url = write_snapshot(snap, str(tmp_path / "datasets"), version=3)
    written = b"".join(p.read_bytes() for p in Path(url).iterdir())
    for secret in (b"bob@example.com", b"Elm Street", b"555-0101", b"4111", b"swordfish"):
        assert secret not in written
    manifest = json.loads((Path(url) / "manifest.json").read_text())
    assert manifest["version"] == 3
    assert manifest["counts"] == {"sft": 3, "dpo": 1}
    assert manifest["scrubbed"] == {"address": 1, "card": 1, "email": 4, "phone": 1, "secret": 1}
    assert manifest["source_turn_ids"] == ["turn_a"]
    assert manifest["size_bytes"] == sum(manifest["bytes"].values())
    assert "Sure thing!" in (Path(url) / "sft.jsonl").read_text()  # plain text kept


def test_snapshot_round_trips_through_any_fsspec_url():
    sft, pairs = _data()
    snap = build_snapshot(owner_kind="group", owner_id="grp_9", sft=sft, pairs=pairs)
    url = write_snapshot(snap, "memory://attune-test/datasets", version=1)
    assert url.startswith("memory://attune-test/datasets/group/grp_9/")
    back = read_snapshot(url)
    assert back.content_hash == snap.content_hash
    assert back.sft == snap.sft and back.pairs == snap.pairs
    fs = fsspec.filesystem("memory")
    fs.rm("/attune-test", recursive=True)


def test_same_data_gives_the_same_hash_and_path(tmp_path: Path):
    sft, pairs = _data()
    a = build_snapshot(owner_kind="user", owner_id="u", sft=sft, pairs=pairs)
    b = build_snapshot(owner_kind="user", owner_id="u", sft=list(reversed(sft)), pairs=pairs)
    assert a.content_hash == b.content_hash
    c = build_snapshot(owner_kind="user", owner_id="u", sft=sft[:2], pairs=pairs)
    assert c.content_hash != a.content_hash
    root = str(tmp_path)
    assert write_snapshot(a, root, version=1) == write_snapshot(b, root, version=1)


def test_tampered_snapshot_is_refused(tmp_path: Path):
    sft, pairs = _data()
    url = write_snapshot(
        build_snapshot(owner_kind="user", owner_id="u", sft=sft, pairs=pairs),
        str(tmp_path),
        version=1,
    )
    (Path(url) / "sft.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="hash"):
        read_snapshot(url)


def test_held_out_split_is_stable_as_data_grows():
    items = [f"turn_{i}" for i in range(200)]
    train, held = split_held_out(items, str, 0.2)
    assert 20 <= len(held) <= 60 and len(train) + len(held) == 200
    _, held_more = split_held_out([*items, *(f"new_{i}" for i in range(100))], str, 0.2)
    assert set(held) <= set(held_more)  # an item never changes sides
    assert split_held_out(["a", "b"], str, 0.0001)[1]  # at least one held out from two


def test_hparams_defaults_by_size_and_overrides():
    small, big = defaults_for("sft", 135_000_000), defaults_for("sft", 7_000_000_000)
    assert small.rank == 8 and big.rank == 16 and big.learning_rate < small.learning_rate
    assert defaults_for("dpo", 135_000_000).beta == 0.1
    h = with_overrides(small, {"max_steps": 5, "target_modules": ["q_proj"]})
    assert h.max_steps == 5 and h.target_modules == ("q_proj",)
    with pytest.raises(ValueError, match="unknown"):
        with_overrides(small, {"lr": 1})
    with pytest.raises(ValueError, match="out of range"):
        with_overrides(HParams(), {"batch_size": 0})


def test_sft_gate_needs_both_margins_and_bounded_forgetting():
    t = GateThresholds(sft_margin=0.05, general_max_rise=0.03)
    args: dict[str, Any] = {
        "candidate_general_ppl": 10.2,
        "base_general_ppl": 10.0,
        "thresholds": t,
    }
    ok = gate_sft(candidate_ppl=5.0, base_ppl=8.0, current_ppl=6.0, **args)
    assert ok.passed and len(ok.reasons) == 3
    assert ok.metrics["heldout_ppl_change_vs_base"] == pytest.approx(-0.375)
    not_vs_current = gate_sft(candidate_ppl=5.9, base_ppl=8.0, current_ppl=6.0, **args)
    assert not not_vs_current.passed
    assert "current adapter" in not_vs_current.reasons[1]
    forgets = gate_sft(
        candidate_ppl=5.0,
        base_ppl=8.0,
        current_ppl=None,
        candidate_general_ppl=10.5,
        base_general_ppl=10.0,
        thresholds=t,
    )
    assert not forgets.passed and "above" in forgets.reasons[-1]


def test_dpo_gate_beats_current_or_chance():
    t = GateThresholds()
    common: dict[str, Any] = {
        "candidate_general_ppl": 10.0,
        "base_general_ppl": 10.0,
        "thresholds": t,
    }
    assert gate_dpo(candidate_accuracy=0.8, current_accuracy=0.7, **common).passed
    assert not gate_dpo(candidate_accuracy=0.7, current_accuracy=0.7, **common).passed
    assert gate_dpo(candidate_accuracy=0.6, current_accuracy=None, **common).passed
    assert not gate_dpo(candidate_accuracy=0.5, current_accuracy=None, **common).passed


def test_preference_accuracies():
    base = [(-10.0, -8.0), (-5.0, -6.0)]
    policy = [(-9.0, -9.0), (-5.0, -5.5)]  # margins: +2, -0.5
    assert implicit_reward_accuracy(policy, base) == 0.5
    assert likelihood_accuracy(base) == 0.5
    assert implicit_reward_accuracy(base, base) == 0.0


def test_general_text_set_ships_with_the_project():
    texts = general_texts()
    assert len(texts) >= 50 and len(set(texts)) == len(texts)
    assert all(40 < len(t) < 400 for t in texts)
