"""Training for real: SmolLM2-135M on the CPU for a couple of steps, and a training
process killed with SIGKILL after a checkpoint that resumes from it when run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adapters.datasets import SFTExample
from adapters.dpo import train_dpo
from adapters.hparams import hparams_for
from adapters.model_store import resolve_model_dir
from adapters.quality_gate import Scorer
from adapters.sft import train_sft
from adapters.training import RunSpec, last_checkpoint
from evals.suites.adapters.data import USERS, user_data
from tests.tiny_lm import build_tiny_lm
from wiring.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.model
def test_smollm2_sft_and_dpo_steps_on_cpu(settings: Settings, tmp_path: Path):
    model_dir = resolve_model_dir(settings.model)
    examples, pairs = user_data(USERS[1])  # pirate
    runs = {}
    for kind in ("sft", "dpo"):
        spec = RunSpec(
            kind=kind,
            base_model_dir=model_dir,
            work_dir=tmp_path / f"work-{kind}",
            output_dir=tmp_path / "adapters" / kind,
            hparams=hparams_for(kind, model_dir, {"max_steps": 2, "batch_size": 2}),
            device="cpu",
        )
        runs[kind] = train_sft(examples[:4], spec) if kind == "sft" else train_dpo(pairs[:4], spec)
        assert runs[kind].steps == 2 and runs[kind].device == "cpu"
        tensors = load_file(str(spec.output_dir / "adapter_model.safetensors"))
        lora_b = [v for k, v in tensors.items() if "lora_B" in k]
        assert lora_b and all(torch.count_nonzero(v) > 0 for v in lora_b)
        config = json.loads((spec.output_dir / "adapter_config.json").read_text())
        assert config["r"] == 8 and set(config["target_modules"]) == {"q_proj", "v_proj"}

    scorer = Scorer(model_dir, device="cpu")
    scorer.add_adapter("sft", runs["sft"].adapter_dir)
    held = examples[40:44]
    assert scorer.reply_perplexity(held, "sft") != scorer.reply_perplexity(held, None)


TRAIN_SCRIPT = """
import sys, time
from pathlib import Path
from adapters.datasets import SFTExample
from adapters.hparams import HParams
from adapters.sft import train_sft
from adapters.training import RunSpec

def slow(step, total):
    print(f"step {step}", flush=True)
    time.sleep(0.3)

examples = [SFTExample(({"role": "user", "content": f"q{i}"},), f"Arr {i}!", "accepted", f"t{i}")
            for i in range(16)]
spec = RunSpec(kind="sft", base_model_dir=Path(sys.argv[1]), work_dir=Path(sys.argv[2]),
               output_dir=Path(sys.argv[3]),
               hparams=HParams(max_steps=40, save_steps=2, batch_size=4, learning_rate=1e-2),
               device="cpu", progress=slow)
train_sft(examples, spec)
"""


def test_a_sigkilled_training_process_resumes_from_its_checkpoint(tmp_path: Path):
    tiny = build_tiny_lm(tmp_path / "tiny")
    work, out = tmp_path / "work", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(tiny), str(work), str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while (ckpt := last_checkpoint(work)) is None or int(ckpt.name.split("-")[1]) < 4:
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    resume_from = last_checkpoint(work)
    assert resume_from is not None
    step = int(resume_from.name.split("-")[1])
    assert step >= 4

    seen: list[int] = []
    examples = [
        SFTExample(({"role": "user", "content": f"q{i}"},), f"Arr {i}!", "accepted", f"t{i}")
        for i in range(16)
    ]
    from adapters.hparams import HParams

    result = train_sft(
        examples,
        RunSpec(
            kind="sft",
            base_model_dir=tiny,
            work_dir=work,
            output_dir=out,
            hparams=HParams(max_steps=40, save_steps=2, batch_size=4, learning_rate=1e-2),
            device="cpu",
            progress=lambda s, t: seen.append(s),
        ),
    )
    assert result.resumed_from_step == step
    assert seen[0] == step + 1 and seen[-1] == 40
    assert (out / "adapter_model.safetensors").is_file()
