"""Training hyper-parameters: defaults by base-model size, overridable per job.

A job names its kind (``sft`` or ``dpo``) and may override any field by name; everything
else comes from :func:`defaults_for`, which looks at the base model's parameter count.
The figures follow common practice for LoRA on small causal LMs (OPPU: r=8 on the
attention's q/v projections) and were checked on SmolLM2-135M by ``attune eval adapters``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TrainingKind = Literal["sft", "dpo"]


@dataclass(frozen=True)
class HParams:
    """Everything a training run needs to know besides its data and model.

    Attributes:
        rank: LoRA rank ``r``.
        alpha: LoRA scaling ``alpha`` (the update is scaled by ``alpha / r``).
        dropout: LoRA dropout.
        target_modules: Module names that get LoRA (``q_proj``, ``v_proj`` …).
        learning_rate: Peak learning rate (linear decay after ``warmup_ratio``).
        epochs: Passes over the data when ``max_steps`` is ``None``.
        max_steps: A fixed number of optimizer steps, overriding ``epochs``.
        batch_size: Examples (SFT) or pairs (DPO) per device step.
        grad_accum: Device steps per optimizer step.
        max_length: Token budget per example (prompt and completion together).
        warmup_ratio: Share of the steps spent warming up.
        weight_decay: AdamW weight decay.
        beta: DPO's KL strength (ignored by SFT).
        save_steps: Checkpoint every this many optimizer steps (resume points).
        seed: Seeds data order and LoRA initialisation.
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    learning_rate: float = 2e-4
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 384
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    beta: float = 0.1
    save_steps: int = 10
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


# (largest parameter count, SFT defaults, DPO defaults), smallest bucket first.
_BUCKETS: tuple[tuple[float, HParams, HParams], ...] = (
    (
        300e6,  # SmolLM2-135M and friends: cheap steps, a higher rate moves them in few steps
        HParams(rank=8, alpha=16, learning_rate=1e-3, epochs=4.0, batch_size=8),
        HParams(rank=8, alpha=16, learning_rate=5e-4, epochs=2.0, batch_size=8, beta=0.1),
    ),
    (
        3e9,
        HParams(rank=16, alpha=32, learning_rate=2e-4, epochs=3.0, batch_size=8),
        HParams(rank=16, alpha=32, learning_rate=5e-5, epochs=2.0, batch_size=4, grad_accum=2),
    ),
    (
        float("inf"),
        HParams(rank=16, alpha=32, learning_rate=1e-4, epochs=2.0, batch_size=4, grad_accum=4),
        HParams(rank=16, alpha=32, learning_rate=2e-5, epochs=2.0, batch_size=2, grad_accum=8),
    ),
)


def defaults_for(kind: TrainingKind, parameter_count: int) -> HParams:
    """Default hyper-parameters for a job of ``kind`` on a model of this size.

    Args:
        kind: ``sft`` or ``dpo``.
        parameter_count: The base model's parameter count.

    Returns:
        The defaults of the smallest size bucket the model fits in.
    """
    for limit, sft, dpo in _BUCKETS:
        if parameter_count <= limit:
            return sft if kind == "sft" else dpo
    raise AssertionError("the last bucket has no limit")


def with_overrides(hparams: HParams, overrides: Mapping[str, Any] | None) -> HParams:
    """Return ``hparams`` with the named fields replaced.

    Args:
        hparams: The defaults.
        overrides: Field names and values (a job's overrides); ``None`` changes nothing.

    Returns:
        A new :class:`HParams`.

    Raises:
        ValueError: A name is not a field, or a value is out of range.
    """
    if not overrides:
        return hparams
    known = {f.name for f in dataclasses.fields(HParams)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown hyper-parameters: {', '.join(unknown)}")
    values = dict(overrides)
    if "target_modules" in values:
        values["target_modules"] = tuple(values["target_modules"])
    result = dataclasses.replace(hparams, **values)
    _validate(result)
    return result


def _validate(h: HParams) -> None:
    positive = {
        "rank": h.rank,
        "alpha": h.alpha,
        "learning_rate": h.learning_rate,
        "epochs": h.epochs,
        "batch_size": h.batch_size,
        "grad_accum": h.grad_accum,
        "max_length": h.max_length,
        "beta": h.beta,
        "save_steps": h.save_steps,
    }
    bad = [name for name, value in positive.items() if not value > 0]
    if h.max_steps is not None and h.max_steps < 1:
        bad.append("max_steps")
    if not 0 <= h.dropout < 1:
        bad.append("dropout")
    if not 0 <= h.warmup_ratio < 1:
        bad.append("warmup_ratio")
    if not h.target_modules:
        bad.append("target_modules")
    if bad:
        raise ValueError(f"hyper-parameters out of range: {', '.join(bad)}")


def count_parameters(model_dir: Path) -> int:
    """Count a model's parameters from its ``config.json`` without loading weights.

    Builds the model on the ``meta`` device (no memory), so any architecture that
    transformers knows works.

    Args:
        model_dir: A local Hugging Face model directory.

    Returns:
        The number of parameters (tied weights counted once).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    return int(sum(p.numel() for p in model.parameters()))


def hparams_for(
    kind: TrainingKind, model_dir: Path, overrides: Mapping[str, Any] | None = None
) -> HParams:
    """Defaults for ``kind`` on the model in ``model_dir``, with a job's overrides.

    Args:
        kind: ``sft`` or ``dpo``.
        model_dir: The base model directory.
        overrides: Field names and values that win over the defaults.

    Returns:
        The hyper-parameters for the job.
    """
    return with_overrides(defaults_for(kind, count_parameters(model_dir)), overrides)


def dumps(hparams: HParams) -> str:
    """Serialize for a manifest or a job record."""
    return json.dumps(hparams.as_dict(), sort_keys=True)
