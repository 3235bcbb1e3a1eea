"""What SFT and DPO training share: spec, loading, checkpoints, resume, publication.

A run is described by a :class:`RunSpec`: the base model, a *work directory* that holds
its checkpoints, and the *output directory* the finished adapter will occupy. Training
resumes from the newest complete checkpoint in the work directory, so a worker that was
killed and is started again on the same spec (same deterministic work directory)
continues where it stopped. The adapter is written to a hidden sibling of the output
directory and renamed into place last: the output directory either holds a finished
adapter with its ``attune-training.json`` marker, or does not exist. A spec whose output
already exists returns at once (a redelivered task finds its work done).

``adapters.sft`` and ``adapters.dpo`` build the trainers; a Celery task is a thin wrapper
that turns ids into a spec and a job-progress callback.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PrinterCallback,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from adapters.engine import pick_device
from adapters.hparams import HParams, TrainingKind

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""Called after every optimizer step with ``(step, total_steps)``."""

MARKER = "attune-training.json"
"""Written into a finished adapter directory: what it was trained on and how."""

CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class RunSpec:
    """One training run.

    Attributes:
        kind: ``sft`` or ``dpo``.
        base_model_dir: The base model (a local Hugging Face directory).
        work_dir: Holds checkpoints; reuse it to resume a killed run.
        output_dir: Where the finished adapter goes (must not be inside ``work_dir``).
        hparams: Hyper-parameters (see ``adapters.hparams``).
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: Receives ``(step, total)`` after each optimizer step.
        metadata: Extra facts for the marker file (dataset hash, owner, job id …).
    """

    kind: TrainingKind
    base_model_dir: Path
    work_dir: Path
    output_dir: Path
    hparams: HParams
    device: str = "auto"
    progress: ProgressFn | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingResult:
    """What a finished run produced.

    Attributes:
        adapter_dir: The published adapter directory.
        kind: ``sft`` or ``dpo``.
        steps: Optimizer steps in total.
        resumed_from_step: The checkpoint step training resumed from, or ``None``.
        train_loss: Mean training loss over the steps this process ran.
        seconds: Wall time of this process's part of the run.
        device: Where it trained (``cpu``, ``cuda``).
        examples: Training examples (SFT) or pairs (DPO).
        already_done: ``True`` when the output existed and nothing was trained.
    """

    adapter_dir: Path
    kind: str
    steps: int
    resumed_from_step: int | None
    train_loss: float | None
    seconds: float
    device: str
    examples: int
    already_done: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "adapter_dir": str(self.adapter_dir),
            "kind": self.kind,
            "steps": self.steps,
            "resumed_from_step": self.resumed_from_step,
            "train_loss": self.train_loss,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "examples": self.examples,
        }


def lora_config(hparams: HParams) -> LoraConfig:
    """The peft LoRA configuration for a causal LM with these hyper-parameters."""
    return LoraConfig(
        r=hparams.rank,
        lora_alpha=hparams.alpha,
        lora_dropout=hparams.dropout,
        target_modules=list(hparams.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_for_training(model_dir: Path, device: str) -> tuple[PreTrainedModel, Any]:
    """Load the base model (float32) and tokenizer from a local directory.

    Float32 weights on every device: on CUDA the trainer adds bf16 autocast, which keeps
    LoRA's updates in full precision.

    Args:
        model_dir: A local Hugging Face model directory.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        ``(model, tokenizer)``; the tokenizer has a pad token.
    """
    target = pick_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, device_map=target, local_files_only=True
    )
    return model, tokenizer


def trainer_arguments(spec: RunSpec) -> dict[str, Any]:
    """Keyword arguments every ``TrainingArguments`` subclass accepts, for this run."""
    h = spec.hparams
    on_cpu = pick_device(spec.device).type == "cpu"
    return {
        "output_dir": str(spec.work_dir / CHECKPOINTS),
        "per_device_train_batch_size": h.batch_size,
        "gradient_accumulation_steps": h.grad_accum,
        "learning_rate": h.learning_rate,
        "num_train_epochs": h.epochs,
        "max_steps": h.max_steps if h.max_steps is not None else -1,
        "warmup_steps": h.warmup_ratio,  # below 1: a share of the steps (transformers 5)
        "weight_decay": h.weight_decay,
        "lr_scheduler_type": "linear",
        "save_strategy": "steps",
        "save_steps": h.save_steps,
        # Two, so a checkpoint cut short by a kill never leaves the run without one.
        "save_total_limit": 2,
        "logging_steps": 1,
        "report_to": [],
        "seed": h.seed,
        "data_seed": h.seed,
        "use_cpu": on_cpu,
        "bf16": not on_cpu and torch.cuda.is_bf16_supported(),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def last_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or ``None``.

    The trainer writes ``trainer_state.json`` last, so a checkpoint without a readable
    one was cut short by a kill and is skipped.
    """
    root = work_dir / CHECKPOINTS
    if not root.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for entry in root.iterdir():
        prefix, _, number = entry.name.partition("-")
        if prefix != "checkpoint" or not number.isdigit():
            continue
        try:
            json.loads((entry / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append((int(number), entry))
    return max(found)[1] if found else None


class ProgressCallback(TrainerCallback):
    """Forwards ``(step, total)`` to a plain function after each optimizer step."""

    def __init__(self, progress: ProgressFn | None) -> None:
        """Wrap ``progress`` (``None``: only log)."""
        self.progress = progress
        self.losses: list[float] = []

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Report the step just finished."""
        if self.progress is not None:
            self.progress(state.global_step, state.max_steps)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Keep the per-step losses for the result."""
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def finished(output_dir: Path) -> dict[str, Any] | None:
    """The marker of a finished adapter in ``output_dir``, or ``None``."""
    try:
        data = json.loads((output_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def result_from_marker(output_dir: Path, marker: dict[str, Any]) -> TrainingResult:
    """Rebuild a :class:`TrainingResult` for an adapter that was already published."""
    result = marker.get("result", {})
    return TrainingResult(
        adapter_dir=output_dir,
        kind=str(marker.get("kind", "")),
        steps=int(result.get("steps", 0)),
        resumed_from_step=result.get("resumed_from_step"),
        train_loss=result.get("train_loss"),
        seconds=0.0,
        device=str(result.get("device", "")),
        examples=int(result.get("examples", 0)),
        already_done=True,
    )


def train_lora(
    spec: RunSpec,
    records: Sequence[dict[str, Any]],
    *,
    config: Callable[[RunSpec], TrainingArguments],
    trainer_class: Callable[..., Any],
    what: str,
) -> TrainingResult:
    """Train a fresh LoRA adapter with a TRL trainer and publish it at ``spec.output_dir``.

    What ``adapters.sft`` and ``adapters.dpo`` share: returns at once when the output
    already holds a finished adapter, else loads the base model, builds the trainer with
    the run's LoRA configuration and a progress callback, and hands it to
    :func:`run_and_publish` (which resumes from the newest checkpoint).

    Args:
        spec: The run (its kind already checked by the caller).
        records: TRL's conversational records, one per example or pair.
        config: Builds the trainer's arguments (a ``TrainingArguments`` subclass) for
            ``spec``; called only when there is something to train.
        trainer_class: ``SFTTrainer`` or ``DPOTrainer``.
        what: What a record is, in plural, for the error (``SFT examples``).

    Returns:
        What the run produced.

    Raises:
        ValueError: No records (and no finished adapter at the output).
    """
    done = finished(spec.output_dir)
    if done is not None:
        return result_from_marker(spec.output_dir, done)
    if not records:
        raise ValueError(f"no {what} to train on")
    model, tokenizer = load_for_training(spec.base_model_dir, spec.device)
    callback = ProgressCallback(spec.progress)
    trainer = trainer_class(
        model=model,
        args=config(spec),
        train_dataset=Dataset.from_list(list(records)),
        processing_class=tokenizer,
        peft_config=lora_config(spec.hparams),
        callbacks=[callback],
    )
    return run_and_publish(spec, trainer, callback, len(records))


def run_and_publish(
    spec: RunSpec, trainer: Any, callback: ProgressCallback, examples: int
) -> TrainingResult:
    """Train (resuming if a checkpoint exists), then publish the adapter atomically.

    Args:
        spec: The run.
        trainer: A built ``SFTTrainer`` or ``DPOTrainer`` whose callbacks include
            ``callback``.
        callback: The run's progress callback (for the losses).
        examples: Training examples or pairs, for the result.

    Returns:
        The result; the work directory's checkpoints are removed once published.
    """
    started = time.perf_counter()
    trainer.remove_callback(PrinterCallback)  # per-step log dicts on stdout; progress has them
    resume = last_checkpoint(spec.work_dir)
    resumed_from = int(resume.name.partition("-")[2]) if resume is not None else None
    if resume is not None:
        logger.info("resuming %s training from %s", spec.kind, resume)
    trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    steps = int(trainer.state.global_step)
    seconds = time.perf_counter() - started
    device = pick_device(spec.device).type
    losses = callback.losses
    result = TrainingResult(
        adapter_dir=spec.output_dir,
        kind=spec.kind,
        steps=steps,
        resumed_from_step=resumed_from,
        train_loss=sum(losses) / len(losses) if losses else None,
        seconds=seconds,
        device=device,
        examples=examples,
    )
    marker = {
        "kind": spec.kind,
        "base_model_dir": str(spec.base_model_dir),
        "hparams": spec.hparams.as_dict(),
        "metadata": spec.metadata,
        "result": result.as_dict(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    publish_adapter(trainer.model, spec.output_dir, marker)
    shutil.rmtree(spec.work_dir / CHECKPOINTS, ignore_errors=True)
    return result


def publish_adapter(model: Any, output_dir: Path, marker: dict[str, Any]) -> None:
    """Save a peft model's adapter into a hidden sibling, then rename it to ``output_dir``.

    Raises:
        OSError: ``output_dir`` already holds files (another run published first).
    """
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.with_name(f".{output_dir.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        model.save_pretrained(str(staging))
        (staging / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        staging.rename(output_dir)  # atomic on one filesystem; fails if the target exists
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
