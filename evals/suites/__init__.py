"""The eval suites, registered in one place, and each one's results as a stored run.

``attune eval list`` prints ``SUITES``. Each suite's command turns its report into an
:class:`evals.runs.EvalRun` with the converter here and stores it (``record``), printing
the run id that ``attune eval compare`` and ``attune eval report`` take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from evals.runs import CaseResult, EvalRun, save


@dataclass(frozen=True)
class Suite:
    """A suite: its command, what a case is, and the metric a regression is judged on."""

    name: str
    command: str
    measures: str
    case: str
    primary: str


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "memory",
            "attune eval memory",
            "recall of gold source turns on the synthetic dataset (hybrid vs dense vs lexical)",
            "a question; passes when every gold turn is in the hybrid top 10",
            "recall@10",
        ),
        Suite(
            "locomo",
            "attune eval locomo --data DIR",
            "evidence recall on LoCoMo conversations, beside BM25, dense and fusion baselines",
            "a question; passes when all its evidence is in the top 10 right after import",
            "recall@10",
        ),
        Suite(
            "instructions",
            "attune eval instructions [--cases FILE]",
            "instruction detection precision and recall on labelled phrasings",
            "a phrasing; passes when nothing expected is missed and nothing else detected",
            "correct",
        ),
        Suite(
            "preferences",
            "attune eval preferences [--split S]",
            "whether a preference stated once reaches the composed prompt when it matters",
            "a question at one moment; passes when the prompt holds the preference",
            "surfaced",
        ),
        Suite(
            "persona",
            "attune eval persona",
            "token cost of the composed system prompt for 50 facts and 10 instructions",
            "a prompt configuration (no verdict; fewer tokens is better)",
            "system_tokens",
        ),
        Suite(
            "adapters",
            "attune eval adapters",
            "per-user SFT and DPO adapters against the base model: style perplexity, "
            "general-text change, preference accuracy, the gate",
            "a synthetic user; passes when both adapters pass the gate",
            "style_ppl_drop",
        ),
    )
}
"""Every ``attune eval`` suite; those with a ``primary`` metric store their runs."""


def case_id(*parts: str) -> str:
    """A stable, readable case id: the parts joined, long text replaced by a short hash."""
    out = []
    for part in parts:
        if len(part) > 40:
            part = part[:24].rstrip() + "~" + hashlib.sha256(part.encode()).hexdigest()[:8]
        out.append(part)
    return "/".join(out)


def prompt_versions() -> dict[str, str]:
    """The active version of every prompt (``GraphSettings.active_versions``)."""
    from wiring.settings import load_settings

    return load_settings().graph.active_versions()


def record(run: EvalRun) -> EvalRun:
    """Store ``run`` (with the active prompt versions) and print its id."""
    run.prompts = run.prompts or prompt_versions()
    save(run)
    typer.echo(f"run id: {run.id}  (stored; `attune eval compare {run.id} OTHER`)")
    return run


def memory_run(report: Any, questions: Sequence[Any], dataset: str) -> EvalRun:
    """``attune eval memory``'s report as a run: one case per question (episodic search)."""
    modes = {m: report.result("episodic", m).per_question for m in ("hybrid", "dense", "lexical")}
    cases = []
    for i, q in enumerate(questions):
        hybrid = modes["hybrid"][i]
        metrics = {f"recall@{k}": float(v) for k, v in hybrid.items()}
        metrics |= {f"{m} recall@10": float(modes[m][i][10]) for m in ("dense", "lexical")}
        cases.append(CaseResult(q.id, metrics, hybrid[10] == 1.0, f"[{q.category}] {q.text}"))
    head = report.result("episodic", "hybrid")
    aggregates = {f"recall@{k}": v for k, v in head.recall.items()}
    if head.held_out is not None:
        aggregates["held-out recall@10"] = head.held_out
    return EvalRun(
        suite="memory",
        dataset=dataset,
        aggregates=aggregates,
        cases=cases,
        primary="recall@10",
        settings={"memory": report.config.get("retrieval", {})},
    )


def locomo_run(report: Any, data: str, settings: Mapping[str, Any]) -> EvalRun:
    """``attune eval locomo``'s report as a run: one case per question, every system."""
    systems = {
        name.replace("attune (", "").replace(")", ""): scores.per_question
        for name, scores in report.systems.items()
    }
    head_name = "defaults, right after import"
    cases: list[CaseResult] = []
    seen: dict[str, int] = {}
    for i, q in enumerate(report.questions):
        n = seen[q.conversation] = seen.get(q.conversation, 0) + 1
        head = systems[head_name][i]
        metrics = {f"recall@{k}": float(v) for k, v in head.items()}
        metrics |= {f"{s} recall@10": float(per[i][10]) for s, per in systems.items()}
        detail = f"[{q.category}] {q.text}"
        cases.append(CaseResult(f"{q.conversation}/{n}", metrics, head[10] == 1.0, detail))
    aggregates = {
        f"{s} recall@10": sum(p[10] for p in per) / max(len(per), 1) for s, per in systems.items()
    }
    aggregates |= {
        f"recall@{k}": sum(p[k] for p in systems[head_name]) / max(len(cases), 1)
        for k in (5, 10, 20)
    }
    return EvalRun(
        suite="locomo",
        dataset=data,
        aggregates=aggregates,
        cases=cases,
        primary="recall@10",
        settings={"memory": dict(settings), "ingest": report.ingest},
    )


def instructions_run(
    sets: Mapping[str, Sequence[Any]], detect: Any, detector: str, dataset: str
) -> EvalRun:
    """``attune eval instructions`` as a run: one case per phrasing, scored alone."""
    from evals.suites.instructions.suite import score

    cases = []
    tp = fp = fn = 0
    for name, chosen in sets.items():
        for case in chosen:
            s = score([case], detect)
            tp, fp, fn = tp + s.tp, fp + s.fp, fn + s.fn
            wrong = [f"missed {e}" for _, e in s.misses] + [
                f"detected {g}" for _, g in s.false_alarms
            ]
            cases.append(
                CaseResult(
                    case_id(*([name] if len(sets) > 1 else []), case.split, case.text),
                    {"correct": float(not wrong), "tp": s.tp, "fp": s.fp, "fn": s.fn},
                    not wrong,
                    f"[{case.kind}] {case.text!r}" + (f": {'; '.join(wrong)}" if wrong else ""),
                )
            )
    aggregates = {
        "correct": sum(c.passed for c in cases) / max(len(cases), 1),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
    }
    return EvalRun(
        suite="instructions",
        dataset=dataset,
        aggregates=aggregates,
        cases=cases,
        primary="correct",
        settings={"detector": detector},
    )


def preferences_run(report: Any, dataset: str, settings: Mapping[str, Any]) -> EvalRun:
    """``attune eval preferences`` as a run: one case per question and moment."""
    cases = [
        CaseResult(
            case_id(split, moment, user, topic),
            {"surfaced": float(surfaced), "words": float(words)},
            surfaced,
            question,
        )
        for (split, moment), tally in report.tallies.items()
        for user, topic, surfaced, words, question in tally.results
    ]
    aggregates: dict[str, float] = {
        "surfaced": sum(c.passed for c in cases) / max(len(cases), 1),
        "words max": max((c.metrics["words"] for c in cases), default=0.0),
    }
    for (split, moment), tally in report.tallies.items():
        aggregates[f"{split}/{moment} surfaced"] = tally.rate
    return EvalRun(
        suite="preferences",
        dataset=dataset,
        aggregates=aggregates,
        cases=cases,
        primary="surfaced",
        settings=dict(settings),
    )


def persona_run(result: Mapping[str, Any]) -> EvalRun:
    """``attune eval persona``'s figures as a run: one case per prompt configuration.

    Fewer tokens is better (``lower_is_better``); a configuration has no verdict.
    """
    rows = result["rows"]
    cases = [
        CaseResult(
            case_id(name),
            {"system_tokens": float(r["system_tokens"]), "facts_kept": float(r["facts_kept"])},
            True,
            name,
        )
        for name, r in rows.items()
    ]
    return EvalRun(
        suite="persona",
        dataset=f"{result['facts_offered']} facts, {result['instructions']} instructions",
        aggregates={"system_tokens": max(c.metrics["system_tokens"] for c in cases)},
        cases=cases,
        primary="system_tokens",
        prompts={"system": str(result["prompt_version"])},
        lower_is_better=True,
    )


def adapters_run(report: Any) -> EvalRun:
    """``attune eval adapters`` as a run: one case per synthetic user."""
    cases = []
    for u in report.users:
        s, d = u.sft, u.dpo
        metrics = {
            "style_ppl_drop": -float(s["heldout_ppl_change_vs_base"]),
            "general_ppl_rise_sft": float(s["general_ppl_change"]),
            "general_ppl_rise_dpo": float(d["general_ppl_change"]),
            "pref_accuracy": float(d["heldout_likelihood_accuracy"]),
            "pref_accuracy_base": float(d["heldout_likelihood_accuracy_base"]),
            "sft_seconds": float(u.sft_job["seconds"]),
            "dpo_seconds": float(u.dpo_job["seconds"]),
        }
        passed = bool(s["passed"]) and bool(d["passed"])
        cases.append(CaseResult(u.name, metrics, passed, f"{u.name}: {u.style}"))
    names = list(cases[0].metrics) if cases else []
    aggregates = {n: sum(c.metrics[n] for c in cases) / len(cases) for n in names}
    return EvalRun(
        suite="adapters",
        dataset=f"synthetic styled users ({', '.join(c.id for c in cases)})",
        aggregates=aggregates,
        cases=cases,
        primary="style_ppl_drop",
        settings={"device": report.device, "model_dir": report.model_dir},
    )
