"""Random (non-identity) LoRA adapters made with peft, to compare backends (tests, benches)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def random_lora(model_dir: Path, target: Path, *, seed: int = 0, rank: int = 8) -> Path:
    """Save a random rank-``rank`` LoRA on q/v projections of ``model_dir`` into ``target``.

    ``init_lora_weights=False`` makes both matrices random, so the adapter changes the
    model's outputs (peft's default initialisation is the identity).
    """
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(target))
    return target
