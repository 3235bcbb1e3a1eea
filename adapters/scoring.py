"""Scoring text under a base model and its LoRA adapters: the figures the gate compares.

:class:`Scorer` holds one base model with any number of adapters loaded by name and
computes perplexities and preference log-probabilities without gradients;
:func:`implicit_reward_accuracy` and :func:`likelihood_accuracy` turn pair
log-probabilities into shares. ``adapters.quality_gate`` decides with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from adapters.datasets import Message, PreferencePair, SFTExample
from adapters.training import load_for_training

GENERAL_TEXT = "general_text_v1.jsonl"


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
