"""DPO with TRL's ``DPOTrainer`` on a fresh peft LoRA adapter.

The reference policy is the base model itself: with a peft model and no reference model,
TRL computes the reference log-probabilities with the adapter switched off, so one copy
of the weights serves both and only the adapter trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trl.trainer.dpo_config import DPOConfig
from trl.trainer.dpo_trainer import DPOTrainer

from adapters.datasets import PreferencePair
from adapters.training import RunSpec, TrainingResult, train_lora, trainer_arguments


def dpo_records(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    """TRL's conversational preference records for ``pairs``."""
    return [
        {
            "prompt": [dict(m) for m in p.prompt],
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]


def dpo_config(spec: RunSpec) -> DPOConfig:
    """The ``DPOTrainer`` arguments for ``spec``, with its ``beta``."""
    return DPOConfig(
        **trainer_arguments(spec),
        max_length=spec.hparams.max_length,
        beta=spec.hparams.beta,
        # The reference (adapter off) log-probabilities are computed once before the
        # first step instead of in every step of every epoch.
        precompute_ref_log_probs=True,
    )


def train_dpo(pairs: Sequence[PreferencePair], spec: RunSpec) -> TrainingResult:
    """Train a LoRA adapter with DPO on ``pairs`` and publish it at ``spec.output_dir``.

    Resumes from the newest checkpoint in ``spec.work_dir``; returns at once when the
    output already holds a finished adapter.

    Args:
        pairs: Preference pairs (already scrubbed, held-out ones removed).
        spec: The run; ``spec.kind`` must be ``dpo``.

    Returns:
        What the run produced.

    Raises:
        ValueError: No pairs, or the spec is not a DPO run.
    """
    if spec.kind != "dpo":
        raise ValueError(f"train_dpo needs a dpo spec, got {spec.kind!r}")
    return train_lora(
        spec,
        dpo_records(pairs),
        config=dpo_config,
        trainer_class=DPOTrainer,
        what="preference pairs",
    )
