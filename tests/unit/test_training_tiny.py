"""LoRA SFT and DPO on a tiny random model (as TRL's own tests do): adapters change,
the base does not, runs resume from checkpoints, publication is atomic and idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from adapters.datasets import PreferencePair, SFTExample
from adapters.dpo import train_dpo
from adapters.hparams import HParams
from adapters.quality_gate import Scorer, implicit_reward_accuracy
from adapters.sft import train_sft
from adapters.training import MARKER, RunSpec, finished, last_checkpoint
from tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "model")


def _examples(n: int = 16) -> list[SFTExample]:
    return [
        SFTExample(
            ({"role": "user", "content": f"question {i}?"},),
            f"Arr matey, answer {i} be here!",
            "accepted",
            f"turn_{i:03d}",
        )
        for i in range(n)
    ]


def _pairs(n: int = 16) -> list[PreferencePair]:
    return [
        PreferencePair(
            ({"role": "user", "content": f"question {i}?"},),
            f"Arr, {i}!",
            f"The answer is number {i}, as requested.",
            f"turn_{i:03d}",
        )
        for i in range(n)
    ]


def _spec(tiny: Path, tmp: Path, kind: str, **hp: object) -> RunSpec:
    params = {"learning_rate": 1e-2, "batch_size": 4, "max_steps": 4, "save_steps": 2, **hp}
    return RunSpec(
        kind=kind,  # type: ignore[arg-type]
        base_model_dir=tiny,
        work_dir=tmp / "work",
        output_dir=tmp / "out" / f"adapter-{kind}",
        hparams=HParams(**params),  # type: ignore[arg-type]
        device="cpu",
    )


def _lora_b_norms(adapter_dir: Path) -> dict[str, float]:
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return {k: float(v.abs().sum()) for k, v in tensors.items() if "lora_B" in k}


def _base_state(model_dir: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_training_changes_lora_weights_and_not_the_base(tiny: Path, tmp_path: Path, kind: str):
    before = _base_state(tiny)
    steps: list[tuple[int, int]] = []
    spec = _spec(tiny, tmp_path, kind)
    spec = RunSpec(**{**spec.__dict__, "progress": lambda s, t: steps.append((s, t))})
    result = train_sft(_examples(), spec) if kind == "sft" else train_dpo(_pairs(), spec)

    assert result.steps == 4 and result.resumed_from_step is None
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # LoRA B starts at zero: any nonzero value was learned.
    norms = _lora_b_norms(result.adapter_dir)
    assert norms and all(v > 0 for v in norms.values())
    # The base model on disk is untouched, and the adapter's weights are only LoRA's.
    after = _base_state(tiny)
    assert all(torch.equal(before[k], after[k]) for k in before)
    saved = load_file(str(result.adapter_dir / "adapter_model.safetensors"))
    assert all("lora_" in k for k in saved)
    # Published atomically: the marker is there, no staging directory is left, and the
    # checkpoints are gone.
    assert finished(result.adapter_dir) is not None
    assert not [p for p in result.adapter_dir.parent.iterdir() if p.name.startswith(".")]
    assert last_checkpoint(spec.work_dir) is None


def test_base_weights_frozen_during_training(tiny: Path, tmp_path: Path):
    """The in-memory base weights stay fixed while LoRA trains (not just the file)."""
    from peft import get_peft_model

    from adapters.training import load_for_training, lora_config

    model, _ = load_for_training(tiny, "cpu")
    peft_model = get_peft_model(model, lora_config(HParams()))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # One optimiser step over every parameter: only the LoRA weights move.
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    optimiser = torch.optim.SGD(peft_model.parameters(), lr=1.0)
    peft_model.train()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    peft_model(input_ids=ids, labels=ids).loss.backward()
    optimiser.step()
    after = dict(peft_model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= set(trainable)


class Crash(RuntimeError):
    pass


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny: Path, tmp_path: Path):
    spec = _spec(tiny, tmp_path, "sft", max_steps=6, save_steps=2)

    def crash_after_step_3(step: int, total: int) -> None:
        if step == 3:
            raise Crash("worker killed")

    with pytest.raises(Crash):
        train_sft(_examples(), RunSpec(**{**spec.__dict__, "progress": crash_after_step_3}))
    checkpoint = last_checkpoint(spec.work_dir)
    assert checkpoint is not None and checkpoint.name == "checkpoint-2"
    assert not spec.output_dir.exists()

    seen: list[int] = []
    result = train_sft(
        _examples(), RunSpec(**{**spec.__dict__, "progress": lambda s, t: seen.append(s)})
    )
    assert result.resumed_from_step == 2
    assert seen == [3, 4, 5, 6]  # steps 1-2 were not run again
    assert result.steps == 6


def test_a_cut_short_checkpoint_is_skipped(tiny: Path, tmp_path: Path):
    spec = _spec(tiny, tmp_path, "sft", max_steps=4, save_steps=2)
    with pytest.raises(Crash):
        train_sft(
            _examples(),
            RunSpec(**{**spec.__dict__, "progress": _raise_at(3)}),
        )
    # A later checkpoint directory whose state file was never written (killed mid-save).
    (spec.work_dir / "checkpoints" / "checkpoint-3").mkdir()
    assert last_checkpoint(spec.work_dir).name == "checkpoint-2"  # type: ignore[union-attr]


def _raise_at(step_to_fail: int):
    def progress(step: int, total: int) -> None:
        if step == step_to_fail:
            raise Crash("killed")

    return progress


def test_rerunning_a_finished_run_trains_nothing(tiny: Path, tmp_path: Path):
    spec = _spec(tiny, tmp_path, "dpo", max_steps=2)
    first = train_dpo(_pairs(), spec)
    marker = (first.adapter_dir / MARKER).read_text()
    again = train_dpo(_pairs(), RunSpec(**{**spec.__dict__, "progress": _raise_at(1)}))
    assert again.already_done and again.steps == first.steps
    assert (first.adapter_dir / MARKER).read_text() == marker


def test_scorer_sees_what_dpo_learned(tiny: Path, tmp_path: Path):
    pairs = _pairs()
    result = train_dpo(pairs, _spec(tiny, tmp_path, "dpo", max_steps=8))
    scorer = Scorer(tiny, device="cpu")
    scorer.add_adapter("cand", result.adapter_dir)
    base = scorer.pair_logps(pairs, None)
    cand = scorer.pair_logps(pairs, "cand")
    assert implicit_reward_accuracy(base, base) == 0.0  # the base has no margin over itself
    assert implicit_reward_accuracy(cand, base) > 0.5  # the pairs it trained on
    assert scorer.reply_perplexity(_examples(), "cand") != scorer.reply_perplexity(
        _examples(), None
    )


def test_specs_of_the_wrong_kind_are_refused(tiny: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="sft spec"):
        train_sft(_examples(), _spec(tiny, tmp_path, "dpo"))
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo([], _spec(tiny, tmp_path, "dpo"))
