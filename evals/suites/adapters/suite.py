"""``attune eval adapters``: do per-user adapters learn a style without forgetting?

For each synthetic user of ``evals.suites.adapters.data`` (terse, pirate, emoji, formal): build
and write a scrubbed dataset snapshot, hold out a quarter of the questions by id, train
an SFT adapter and a DPO adapter (on ``--dpo-pairs`` pairs) on the rest, then measure on
the held-out questions:

* style perplexity under the SFT adapter vs the base model (target: at least 20% lower),
* general-text perplexity change under each adapter (target: under 3% higher),
* DPO preference accuracy before (base model) and after: the likelihood accuracy (the
  chosen reply more likely per token than the rejected one) of both, and the candidate's implicit
  reward accuracy (the gate's figure),
* the gate's verdict and the wall time and steps of each job.

Runs as ``attune eval adapters`` or ``python -m evals.suites.adapters.suite --model-dir DIR``
(the latter needs no database or settings, e.g. on a GPU machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from adapters.datasets import build_snapshot, read_snapshot, split_held_out, write_snapshot
from adapters.dpo import train_dpo
from adapters.hparams import hparams_for
from adapters.quality_gate import (
    Comparison,
    GateThresholds,
    Scorer,
    evaluate_dpo,
    evaluate_sft,
    general_texts,
)
from adapters.sft import train_sft
from adapters.training import RunSpec, TrainingResult
from evals.suites.adapters.data import USERS, StyledUser, user_data

HELD_OUT = 0.25
TARGET_STYLE_DROP = 0.20
TARGET_GENERAL_RISE = 0.03
TARGET_DPO_SECONDS = 300.0


@dataclass
class UserResult:
    """One synthetic user's figures."""

    name: str
    style: str
    sft_train: int
    sft_held_out: int
    dpo_train: int
    dpo_held_out: int
    sft: dict[str, Any]
    dpo: dict[str, Any]
    sft_job: dict[str, Any]
    dpo_job: dict[str, Any]


@dataclass
class AdaptersReport:
    """The run's figures, printable as a table."""

    model_dir: str
    device: str
    users: list[UserResult] = field(default_factory=list)
    seconds: float = 0.0
    loadavg_start: str = ""
    loadavg_end: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "model_dir": self.model_dir,
            "device": self.device,
            "host": platform.node(),
            "seconds": round(self.seconds, 1),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
            "targets": {
                "style_ppl_drop": TARGET_STYLE_DROP,
                "general_ppl_rise_below": TARGET_GENERAL_RISE,
                "dpo_seconds_below": TARGET_DPO_SECONDS,
            },
            "users": [u.__dict__ for u in self.users],
        }

    def table(self) -> str:
        """A plain-text table, one row per user, then the targets' verdicts."""
        head = (
            f"{'user':<8} {'style ppl base→sft':>20} {'Δ':>7} {'gen Δ sft':>9} {'gen Δ dpo':>9} "
            f"{'pref acc before→after':>22} {'implicit':>8} {'sft s':>7} {'dpo s':>7} "
            f"{'gate sft/dpo':>12}"
        )
        lines = [
            f"adapters eval on {self.device} ({self.model_dir}); "
            f"load average {self.loadavg_start} → {self.loadavg_end}",
            head,
            "-" * len(head),
        ]
        for u in self.users:
            s, d = u.sft, u.dpo
            lines.append(
                f"{u.name:<8} {s['heldout_ppl_base']:>9.2f}→{s['heldout_ppl']:<9.2f} "
                f"{s['heldout_ppl_change_vs_base']:>+7.1%} {s['general_ppl_change']:>+9.2%} "
                f"{d['general_ppl_change']:>+9.2%} "
                f"{d['heldout_likelihood_accuracy_base']:>10.2f}→"
                f"{d['heldout_likelihood_accuracy']:<11.2f} "
                f"{d['heldout_pref_accuracy']:>8.2f} {u.sft_job['seconds']:>7.1f} "
                f"{u.dpo_job['seconds']:>7.1f} "
                f"{_yn(s['passed']) + '/' + _yn(d['passed']):>12}"
            )
        lines.append("")
        lines.extend(self._verdicts())
        lines.append(f"total {self.seconds:.0f} s")
        return "\n".join(lines)

    def _verdicts(self) -> list[str]:
        if not self.users:
            return []
        drops = [-u.sft["heldout_ppl_change_vs_base"] for u in self.users]
        rises = [max(u.sft["general_ppl_change"], u.dpo["general_ppl_change"]) for u in self.users]
        dpo_s = [u.dpo_job["seconds"] for u in self.users]
        return [
            f"style perplexity drop: min {min(drops):.1%} "
            f"(target ≥ {TARGET_STYLE_DROP:.0%}: {_yn(min(drops) >= TARGET_STYLE_DROP)})",
            f"general-text perplexity rise: max {max(rises):+.2%} "
            f"(target < {TARGET_GENERAL_RISE:.0%}: {_yn(max(rises) < TARGET_GENERAL_RISE)})",
            f"DPO job wall time: max {max(dpo_s):.1f} s "
            f"(target < {TARGET_DPO_SECONDS:.0f} s: {_yn(max(dpo_s) < TARGET_DPO_SECONDS)})",
        ]


def _yn(ok: bool) -> str:
    return "yes" if ok else "no"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _job(result: TrainingResult) -> dict[str, Any]:
    return {"seconds": round(result.seconds, 2), "steps": result.steps, "loss": result.train_loss}


def run_adapters_eval(
    model_dir: Path,
    work_dir: Path,
    *,
    users: Sequence[StyledUser] = USERS,
    device: str = "auto",
    dpo_pairs: int = 32,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> AdaptersReport:
    """Train and score SFT and DPO adapters for each synthetic user.

    Args:
        model_dir: The base model directory.
        work_dir: Receives datasets, checkpoints and adapters.
        users: Which synthetic users.
        device: ``auto``, ``cpu`` or ``cuda``.
        dpo_pairs: Training pairs per DPO job (the rest of the non-held-out pairs are
            unused).
        seed: Data and training seed.
        overrides: Hyper-parameter overrides for both kinds.
        progress: Show a progress bar per job.

    Returns:
        The report.
    """
    from adapters.engine import pick_device

    started = time.perf_counter()
    report = AdaptersReport(
        model_dir=str(model_dir), device=pick_device(device).type, loadavg_start=_loadavg()
    )
    general = general_texts()
    thresholds = GateThresholds()
    for user in users:
        examples, pairs = user_data(user, seed)
        snapshot = build_snapshot(
            owner_kind="user",
            owner_id=f"eval-{user.name}",
            sft=examples,
            pairs=pairs,
            source_turn_ids=[e.source_id for e in examples],
        )
        url = write_snapshot(snapshot, str(work_dir / "datasets"), version=1)
        stored = read_snapshot(url)
        sft_train, sft_held = split_held_out(stored.sft, lambda e: e.source_id, HELD_OUT)
        dpo_train, dpo_held = split_held_out(stored.pairs, lambda p: p.source_id, HELD_OUT)
        dpo_train = dpo_train[:dpo_pairs]
        base_args = {"base_model_dir": model_dir, "device": device}
        jobs: dict[str, TrainingResult] = {}
        for kind, data in (("sft", sft_train), ("dpo", dpo_train)):
            bar = tqdm(desc=f"{user.name} {kind}", unit="step", disable=not progress)

            def tick(step: int, total: int, bar: Any = bar) -> None:
                bar.total = total
                bar.update(step - bar.n)

            spec = RunSpec(
                kind=kind,  # type: ignore[arg-type]
                work_dir=work_dir / "runs" / f"{user.name}-{kind}",
                output_dir=work_dir / "adapters" / f"{user.name}-{kind}",
                hparams=hparams_for(kind, model_dir, {"seed": seed, **(overrides or {})}),  # type: ignore[arg-type]
                progress=tick,
                metadata={"dataset": stored.content_hash},
                **base_args,  # type: ignore[arg-type]
            )
            jobs[kind] = train_sft(data, spec) if kind == "sft" else train_dpo(data, spec)  # type: ignore[arg-type]
            bar.close()
        scorer = Scorer(model_dir, device=device)
        scorer.add_adapter("sft", jobs["sft"].adapter_dir)
        scorer.add_adapter("dpo", jobs["dpo"].adapter_dir)
        sft_gate = evaluate_sft(Comparison(scorer, general, "sft", None, thresholds), sft_held)
        dpo_gate = evaluate_dpo(Comparison(scorer, general, "dpo", None, thresholds), dpo_held)
        report.users.append(
            UserResult(
                name=user.name,
                style=user.style,
                sft_train=len(sft_train),
                sft_held_out=len(sft_held),
                dpo_train=len(dpo_train),
                dpo_held_out=len(dpo_held),
                sft={**sft_gate.metrics, "passed": sft_gate.passed, "reasons": sft_gate.reasons},
                dpo={**dpo_gate.metrics, "passed": dpo_gate.passed, "reasons": dpo_gate.reasons},
                sft_job=_job(jobs["sft"]),
                dpo_job=_job(jobs["dpo"]),
            )
        )
        del scorer
    report.seconds = time.perf_counter() - started
    report.loadavg_end = _loadavg()
    return report


def pick_users(names: str | None) -> list[StyledUser]:
    """The synthetic users named in a comma-separated list (all when ``None``)."""
    if not names:
        return list(USERS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {u.name: u for u in USERS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown users {unknown}; choose from {sorted(known)}")
    return [known[n] for n in wanted]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the eval without settings or a database (``--model-dir`` names the model)."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--users", default=None, help="comma-separated, default all")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dpo-pairs", type=int, default=32)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an entry point: nothing may reach a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="attune-adapters-eval-") as tmp:
        report = run_adapters_eval(
            args.model_dir,
            args.work_dir or Path(tmp),
            users=pick_users(args.users),
            device=args.device,
            dpo_pairs=args.dpo_pairs,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    print(report.table())


if __name__ == "__main__":
    main()
