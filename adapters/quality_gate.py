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

:class:`adapters.scoring.Scorer` computes the figures with one base model and any number
of adapters loaded by name; :func:`gate_sft` and :func:`gate_dpo` are pure decisions that
return the reasons and metrics to store with the adapter record; :func:`evaluate_sft` and
:func:`evaluate_dpo` score a :class:`Comparison` and decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.datasets import PreferencePair, SFTExample
from adapters.scoring import (
    GENERAL_TEXT,
    Scorer,
    general_texts,
    implicit_reward_accuracy,
    likelihood_accuracy,
)

__all__ = [
    "GENERAL_TEXT",
    "Comparison",
    "GateDecision",
    "GateThresholds",
    "Scorer",
    "evaluate_dpo",
    "evaluate_sft",
    "gate_dpo",
    "gate_sft",
    "general_texts",
    "implicit_reward_accuracy",
    "likelihood_accuracy",
]


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


@dataclass(frozen=True)
class Comparison:
    """A candidate adapter against the base model and the owner's current adapter.

    Attributes:
        scorer: Holds the base model, the candidate and the current adapter.
        general: The general-text set.
        candidate: The candidate's adapter name in ``scorer``.
        current: The promoted adapter's name in ``scorer``, or ``None``.
        thresholds: The margins.
    """

    scorer: Scorer
    general: Sequence[str]
    candidate: str
    current: str | None
    thresholds: GateThresholds

    def general_ppl(self) -> dict[str, float]:
        """General-text perplexity under the candidate and the base model.

        Keyed as the gates take them: ``candidate_general_ppl``, ``base_general_ppl``.
        """
        return {
            "candidate_general_ppl": self.scorer.text_perplexity(self.general, self.candidate),
            "base_general_ppl": self.scorer.text_perplexity(self.general, None),
        }


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


def evaluate_sft(c: Comparison, held_out: Sequence[SFTExample]) -> GateDecision:
    """Score an SFT candidate on the owner's held-out examples and gate it."""
    scorer = c.scorer
    return gate_sft(
        candidate_ppl=scorer.reply_perplexity(held_out, c.candidate),
        base_ppl=scorer.reply_perplexity(held_out, None),
        current_ppl=scorer.reply_perplexity(held_out, c.current) if c.current else None,
        **c.general_ppl(),
        thresholds=c.thresholds,
    )


def evaluate_dpo(c: Comparison, held_out: Sequence[PreferencePair]) -> GateDecision:
    """Score a DPO candidate on the owner's held-out pairs and gate it.

    The metrics also hold the likelihood accuracy (chosen more likely than rejected,
    per token) of the base model and of the candidate.
    """
    scorer = c.scorer
    base = scorer.pair_logps(held_out, None)
    cand = scorer.pair_logps(held_out, c.candidate)
    current_acc = (
        implicit_reward_accuracy(scorer.pair_logps(held_out, c.current), base)
        if c.current
        else None
    )
    return gate_dpo(
        candidate_accuracy=implicit_reward_accuracy(cand, base),
        current_accuracy=current_acc,
        **c.general_ppl(),
        thresholds=c.thresholds,
        extra={
            "heldout_likelihood_accuracy_base": likelihood_accuracy(
                scorer.pair_logps(held_out, None, per_token=True)
            ),
            "heldout_likelihood_accuracy": likelihood_accuracy(
                scorer.pair_logps(held_out, c.candidate, per_token=True)
            ),
            "heldout_pairs": len(held_out),
        },
    )
