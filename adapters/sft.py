"""LoRA supervised fine-tuning (peft, through TRL's ``SFTTrainer``) on a user's replies.

Each example is a prompt (the conversation before the reply) and a completion (the reply
the user accepted or wrote); the loss covers the completion's tokens only, rendered with
the base model's chat template, so the adapter learns how the user wants to be answered
rather than how they ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trl.trainer.sft_config import SFTConfig
from trl.trainer.sft_trainer import SFTTrainer

from adapters.datasets import SFTExample
from adapters.training import RunSpec, TrainingResult, train_lora, trainer_arguments


def sft_records(examples: Sequence[SFTExample]) -> list[dict[str, Any]]:
    """TRL's conversational prompt-completion records for ``examples``."""
    return [
        {
            "prompt": [dict(m) for m in e.prompt],
            "completion": [{"role": "assistant", "content": e.completion}],
        }
        for e in examples
    ]


def sft_config(spec: RunSpec) -> SFTConfig:
    """The ``SFTTrainer`` arguments for ``spec``: loss on the completion only, no packing."""
    return SFTConfig(
        **trainer_arguments(spec),
        max_length=spec.hparams.max_length,
        completion_only_loss=True,
        packing=False,
    )


def train_sft(examples: Sequence[SFTExample], spec: RunSpec) -> TrainingResult:
    """Train a LoRA adapter on ``examples`` and publish it at ``spec.output_dir``.

    Resumes from the newest checkpoint in ``spec.work_dir``; returns at once when the
    output already holds a finished adapter.

    Args:
        examples: The training examples (already scrubbed, held-out ones removed).
        spec: The run; ``spec.kind`` must be ``sft``.

    Returns:
        What the run produced.

    Raises:
        ValueError: No examples, or the spec is not an SFT run.
    """
    if spec.kind != "sft":
        raise ValueError(f"train_sft needs an sft spec, got {spec.kind!r}")
    return train_lora(
        spec,
        sft_records(examples),
        config=sft_config,
        trainer_class=SFTTrainer,
        what="SFT examples",
    )
