"""The quality gate: is a candidate adapter better than what the owner has now?

On data the candidate never saw (the held-out side of ``adapters.datasets.split_held_out``):

* **SFT**: the perplexity of the owner's held-out replies under the candidate must be
  lower than under the base model *and* under the current adapter, each by a margin.
* **DPO**: held-out preference accuracy (share of pairs whose implicit reward margin
  ``[log π(c) − log π_ref(c)] − [log π(r) − log π_ref(r)]`` is positive, the reference
  being the base model) must beat the current adapter's; with no current adapter it must
  beat chance.
* **Both**: perplexity on a fixed general-text set (``evals/data/general_text_v1.jsonl``)
  must not rise above the base model's by more than a set share (forgetting).

:class:`Scorer` computes the figures with one base model and any number of adapters
loaded by name; :func:`gate_sft` and :func:`gate_dpo` are pure decisions that return the
reasons and metrics to store with the adapter record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from adapters.datasets import Message, PreferencePair, SFTExample
from adapters.training import load_for_training

GENERAL_TEXT = "general_text_v1.jsonl"


@dataclass(frozen=True)
class GateThresholds:
    """How much better a candidate must be.

    Attributes:
        sft_margin: Held-out style perplexity must be at most ``(1 - sft_margin)`` times
            the base model's and the current adapter's.
        general_max_rise: General-text perplexity may exceed the base model's by at most
            this share.
        dpo_min_gain: Held-out preference accuracy must exceed the current adapter's by
            more than this (or 0.5 when there is none).
    """

    sft_margin: float = 0.02
    general_max_rise: float = 0.03
    dpo_min_gain: float = 0.0


@dataclass
class GateDecision:
    """Promote or reject, why, and the figures behind it."""

    passed: bool
    reasons: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"passed", "reasons", "metrics"}``."""
        return {"passed": self.passed, "reasons": list(self.reasons), "metrics": self.metrics}


def general_texts(path: Path | None = None) -> list[str]:
    """The fixed general-text set (``evals/data/general_text_v1.jsonl`` by default)."""
    if path is None:
        source = resources.files("evals").joinpath("data", GENERAL_TEXT)
        raw = source.read_text(encoding="utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


class Scorer:
    """One base model with named LoRA adapters, scoring text without gradients."""

    def __init__(self, model_dir: Path, *, device: str = "auto", batch_size: int = 8) -> None:
        """Load the base model and tokenizer (see ``adapters.training.load_for_training``)."""
        model, tokenizer = load_for_training(model_dir, device)
        model.train(False)
        self.base = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.model: Any = model
        self._adapters: set[str] = set()

    def add_adapter(self, name: str, path: Path) -> None:
        """Load the adapter in ``path`` under ``name``."""
        if not self._adapters:
            self.model = PeftModel.from_pretrained(self.base, str(path), adapter_name=name)
        else:
            self.model.load_adapter(str(path), adapter_name=name)
        self.model.train(False)
        self._adapters.add(name)

    @contextmanager
    def using(self, adapter: str | None) -> Iterator[None]:
        """Score with ``adapter`` active, or with none (the base model) for ``None``."""
        if adapter is None:
            if self._adapters:
                with self.model.disable_adapter():
                    yield
            else:
                yield
            return
        if adapter not in self._adapters:
            raise KeyError(f"adapter {adapter!r} is not loaded")
        self.model.set_adapter(adapter)
        yield

    # -- token sequences ----------------------------------------------------------------

    def _chat_ids(self, prompt: Sequence[Message], reply: str) -> tuple[list[int], int]:
        """Token ids of prompt + reply, and where the reply starts (as SFT renders it)."""
        head = self.tokenizer.apply_chat_template(
            list(prompt), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        full = self.tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": reply}],
            tokenize=True,
            return_dict=False,
        )
        return [int(i) for i in full], len(head)

    def _logprob_sums(self, sequences: Sequence[tuple[list[int], int]]) -> list[tuple[float, int]]:
        """Per sequence: summed log-probability of the tokens from ``start`` on, and count."""
        out: list[tuple[float, int]] = []
        device = self.base.device
        pad = int(self.tokenizer.pad_token_id)
        for i in range(0, len(sequences), self.batch_size):
            batch = sequences[i : i + self.batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            scored = torch.zeros((len(batch), width), dtype=torch.bool)
            for row, (seq, start) in enumerate(batch):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
                scored[row, max(start, 1) : len(seq)] = True
            ids, mask, scored = ids.to(device), mask.to(device), scored.to(device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)
            logp = torch.log_softmax(logits[:, :-1], dim=-1)  # predicts tokens 1..T-1
            target = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
            keep = scored[:, 1:]
            sums = (target * keep).sum(dim=1)
            counts = keep.sum(dim=1)
            out.extend((float(s), int(c)) for s, c in zip(sums, counts, strict=True))
        return out

    # -- figures ------------------------------------------------------------------------

    def reply_perplexity(self, examples: Sequence[SFTExample], adapter: str | None) -> float:
        """Perplexity of the examples' completions given their prompts."""
        seqs = [self._chat_ids(e.prompt, e.completion) for e in examples]
        with self.using(adapter):
            sums = self._logprob_sums(seqs)
        return _perplexity(sums)

    def text_perplexity(self, texts: Sequence[str], adapter: str | None) -> float:
        """Perplexity of plain texts (no chat template), every token after the first."""
        seqs = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            seqs.append(([int(i) for i in ids], 1))
        with self.using(adapter):
            sums = self._logprob_sums(seqs)
        return _perplexity(sums)

    def pair_logps(
        self, pairs: Sequence[PreferencePair], adapter: str | None, *, per_token: bool = False
    ) -> list[tuple[float, float]]:
        """Log-probabilities of (chosen, rejected) for each pair.

        Args:
            pairs: The pairs.
            adapter: An adapter name, or ``None`` for the base model.
            per_token: Mean per reply token instead of the sum (DPO's quantity), so
                that a longer reply is not less likely merely for being longer.
        """
        seqs = []
        for p in pairs:
            seqs.append(self._chat_ids(p.prompt, p.chosen))
            seqs.append(self._chat_ids(p.prompt, p.rejected))
        with self.using(adapter):
            sums = self._logprob_sums(seqs)
        values = [s / max(c, 1) if per_token else s for s, c in sums]
        return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def _perplexity(sums: Sequence[tuple[float, int]]) -> float:
    total = sum(s for s, _ in sums)
    count = sum(c for _, c in sums)
    if count == 0:
        raise ValueError("nothing to score")
    return math.exp(-total / count)


def implicit_reward_accuracy(
    policy: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]]
) -> float:
    """Share of pairs whose DPO implicit reward margin is positive.

    Args:
        policy: (chosen, rejected) log-probabilities under the adapter.
        reference: The same under the reference (base) model.

    Returns:
        A share in [0, 1]; ties (a margin of exactly 0) count as wrong.
    """
    if not policy:
        raise ValueError("no pairs")
    wins = sum(
        1 for (pc, pr), (rc, rr) in zip(policy, reference, strict=True) if (pc - rc) - (pr - rr) > 0
    )
    return wins / len(policy)


def likelihood_accuracy(logps: Sequence[tuple[float, float]]) -> float:
    """Share of pairs where the model gives the chosen reply the higher log-probability."""
    if not logps:
        raise ValueError("no pairs")
    return sum(1 for c, r in logps if c > r) / len(logps)


def _general_check(
    candidate: float, base: float, t: GateThresholds, reasons: list[str]
) -> tuple[bool, float]:
    rise = candidate / base - 1.0
    ok = rise <= t.general_max_rise
    verdict = "within" if ok else "above"
    reasons.append(
        f"general-text perplexity {candidate:.3f} vs base {base:.3f} "
        f"({rise:+.1%}, {verdict} the {t.general_max_rise:.0%} limit)"
    )
    return ok, rise


def gate_sft(
    *,
    candidate_ppl: float,
    base_ppl: float,
    current_ppl: float | None,
    candidate_general_ppl: float,
    base_general_ppl: float,
    thresholds: GateThresholds,
) -> GateDecision:
    """Decide on an SFT candidate from its held-out figures (pure).

    Args:
        candidate_ppl: Held-out style perplexity under the candidate.
        base_ppl: The same under the base model.
        current_ppl: The same under the owner's promoted adapter, or ``None``.
        candidate_general_ppl: General-text perplexity under the candidate.
        base_general_ppl: The same under the base model.
        thresholds: The margins.

    Returns:
        The decision, its reasons and metrics.
    """
    reasons: list[str] = []
    limit = 1.0 - thresholds.sft_margin
    ok = True
    for label, other in (("base", base_ppl), ("current adapter", current_ppl)):
        if other is None:
            reasons.append(f"no {label} to compare with")
            continue
        better = candidate_ppl <= other * limit
        ok = ok and better
        reasons.append(
            f"held-out style perplexity {candidate_ppl:.3f} vs {label} {other:.3f} "
            f"({candidate_ppl / other - 1:+.1%}; needs at most {-thresholds.sft_margin:+.0%})"
        )
    general_ok, rise = _general_check(candidate_general_ppl, base_general_ppl, thresholds, reasons)
    metrics = {
        "heldout_ppl": candidate_ppl,
        "heldout_ppl_base": base_ppl,
        "heldout_ppl_current": current_ppl,
        "heldout_ppl_change_vs_base": candidate_ppl / base_ppl - 1.0,
        "general_ppl": candidate_general_ppl,
        "general_ppl_base": base_general_ppl,
        "general_ppl_change": rise,
    }
    return GateDecision(passed=ok and general_ok, reasons=reasons, metrics=metrics)


def gate_dpo(
    *,
    candidate_accuracy: float,
    current_accuracy: float | None,
    candidate_general_ppl: float,
    base_general_ppl: float,
    thresholds: GateThresholds,
    extra: dict[str, Any] | None = None,
) -> GateDecision:
    """Decide on a DPO candidate from its held-out preference accuracy (pure).

    Args:
        candidate_accuracy: Held-out implicit-reward accuracy of the candidate.
        current_accuracy: The same for the owner's promoted adapter, or ``None`` (then
            the bar is chance, 0.5).
        candidate_general_ppl: General-text perplexity under the candidate.
        base_general_ppl: The same under the base model.
        thresholds: The margins.
        extra: More figures to keep in the metrics.

    Returns:
        The decision, its reasons and metrics.
    """
    reasons: list[str] = []
    bar, label = (
        (current_accuracy, "current adapter") if current_accuracy is not None else (0.5, "chance")
    )
    ok = candidate_accuracy > bar + thresholds.dpo_min_gain
    reasons.append(
        f"held-out preference accuracy {candidate_accuracy:.3f} vs {label} {bar:.3f} "
        f"({'beats' if ok else 'does not beat'} it)"
    )
    general_ok, rise = _general_check(candidate_general_ppl, base_general_ppl, thresholds, reasons)
    metrics = {
        "heldout_pref_accuracy": candidate_accuracy,
        "heldout_pref_accuracy_current": current_accuracy,
        "general_ppl": candidate_general_ppl,
        "general_ppl_base": base_general_ppl,
        "general_ppl_change": rise,
        **(extra or {}),
    }
    return GateDecision(passed=ok and general_ok, reasons=reasons, metrics=metrics)


def evaluate_sft(
    scorer: Scorer,
    held_out: Sequence[SFTExample],
    general: Sequence[str],
    *,
    candidate: str,
    current: str | None,
    thresholds: GateThresholds,
) -> GateDecision:
    """Score an SFT candidate (loaded in ``scorer``) and gate it.

    Args:
        scorer: Holds the base model, the candidate and the current adapter.
        held_out: Held-out examples of the owner.
        general: The general-text set.
        candidate: The candidate's adapter name in ``scorer``.
        current: The promoted adapter's name in ``scorer``, or ``None``.
        thresholds: The margins.

    Returns:
        The decision.
    """
    return gate_sft(
        candidate_ppl=scorer.reply_perplexity(held_out, candidate),
        base_ppl=scorer.reply_perplexity(held_out, None),
        current_ppl=scorer.reply_perplexity(held_out, current) if current else None,
        candidate_general_ppl=scorer.text_perplexity(general, candidate),
        base_general_ppl=scorer.text_perplexity(general, None),
        thresholds=thresholds,
    )


def evaluate_dpo(
    scorer: Scorer,
    held_out: Sequence[PreferencePair],
    general: Sequence[str],
    *,
    candidate: str,
    current: str | None,
    thresholds: GateThresholds,
) -> GateDecision:
    """Score a DPO candidate (loaded in ``scorer``) and gate it.

    Args:
        scorer: Holds the base model, the candidate and the current adapter.
        held_out: Held-out pairs of the owner.
        general: The general-text set.
        candidate: The candidate's adapter name in ``scorer``.
        current: The promoted adapter's name in ``scorer``, or ``None``.
        thresholds: The margins.

    Returns:
        The decision; metrics also hold the likelihood accuracy (chosen more likely
        than rejected, per token) of the base model and of the candidate.
    """
    base = scorer.pair_logps(held_out, None)
    cand = scorer.pair_logps(held_out, candidate)
    current_acc = (
        implicit_reward_accuracy(scorer.pair_logps(held_out, current), base) if current else None
    )
    return gate_dpo(
        candidate_accuracy=implicit_reward_accuracy(cand, base),
        current_accuracy=current_acc,
        candidate_general_ppl=scorer.text_perplexity(general, candidate),
        base_general_ppl=scorer.text_perplexity(general, None),
        thresholds=thresholds,
        extra={
            "heldout_likelihood_accuracy_base": likelihood_accuracy(
                scorer.pair_logps(held_out, None, per_token=True)
            ),
            "heldout_likelihood_accuracy": likelihood_accuracy(
                scorer.pair_logps(held_out, candidate, per_token=True)
            ),
            "heldout_pairs": len(held_out),
        },
    )
