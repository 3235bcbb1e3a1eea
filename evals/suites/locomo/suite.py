"""LoCoMo evidence recall: Attune driven as the held-out evaluation drives it, beside baselines.

For each conversation (``evals.suites.locomo.data``): a fresh Attune user, its sessions imported
the way ``POST /v1/users/{id}/history`` does (``import_history`` then
``MemoryService.import_turns``, the route's own calls), and every question of categories
1-4 sent at once to ``MemoryService.search(k=20)``, the call behind
``GET /memories/search`` — no waiting for deferred vectors. A question scores the share
of its evidence ``dia_id`` s among the ``sources[].external_id`` of the top k results.
The same questions are asked again once every vector is written, and to the BM25, dense
and fusion baselines (``evals.suites.locomo.baselines``) in the same run.

Conversations are the split. The defaults were chosen on the development conversations,
so the figure nothing was tuned on is the leave-one-conversation-out line: for each
conversation, the search-time setting (``SWEEP``) that scores best on the *other*
conversations is scored on it. Run it as ``attune eval locomo --data DIR``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from evals.stats import percentile
from evals.suites.locomo.baselines import BASELINES, baseline_rankings
from evals.suites.locomo.data import CATEGORIES, Conversation, LocomoQuestion
from memory.history import import_history
from memory.records import repo
from memory.service import MemoryService

KS = (5, 10, 20)
SWEEP: dict[str, dict[str, Any]] = {
    "defaults": {},
    "lexical 0.3": {"lexical_weight": 0.3},
    "lexical 0.5": {"lexical_weight": 0.5},
    "lexical 2": {"lexical_weight": 2.0},
    "rrf_k 60": {"rrf_k": 60},
    "no speaker prior": {"speaker_prior": 0.0},
    "question prior 0.3": {"question_prior": 0.3},
    "fetch 100": {"fetch_k": 100},
}
"""Search-time settings the leave-one-conversation-out line chooses among (updates to
``MemorySettings``)."""
RERANK_HELD_OUT = "attune (held-out: reranker refit without the conv)"


@dataclass
class Scores:
    """Per-question recall at each k, in question order."""

    per_question: list[dict[int, float]] = field(default_factory=list)

    def mean(self, k: int, keep: Sequence[bool] | None = None) -> float | None:
        """Mean recall@k over the questions ``keep`` marks (all when ``None``)."""
        values = [s[k] for i, s in enumerate(self.per_question) if keep is None or keep[i]]
        return sum(values) / len(values) if values else None


@dataclass
class LocomoReport:
    """The figures of one run."""

    questions: list[LocomoQuestion]
    systems: dict[str, Scores]
    """System name → scores over every question (all conversations, in order)."""
    chosen: dict[str, str]
    """Conversation → the sweep setting chosen on the other conversations."""
    sweep: dict[str, float]
    """Sweep setting → recall@10 on every conversation (tuned-on: for reading only)."""
    ingest: dict[str, Any]
    latency_ms: dict[str, float]
    """Search latency once every vector is written (the first search after an import,
    which waits for them, is ``ingest["first_search_ms"]``)."""
    user_ids: dict[str, str] = field(default_factory=dict)
    """Conversation → the Attune user it was imported as (for answer accuracy)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures: recall per system, overall, per category, per conversation."""
        out: dict[str, Any] = {"ingest": self.ingest, "latency_ms": self.latency_ms}
        out["chosen"] = self.chosen
        out["sweep_recall@10_all_convs"] = self.sweep
        out["questions"] = len(self.questions)
        out["systems"] = {
            name: {
                "overall": {k: _round(s.mean(k)) for k in KS},
                "by_category": {
                    c: _round(s.mean(10, [q.category == c for q in self.questions]))
                    for c in CATEGORIES.values()
                },
                "by_conversation": {
                    conv: _round(s.mean(10, [q.conversation == conv for q in self.questions]))
                    for conv in dict.fromkeys(q.conversation for q in self.questions)
                },
            }
            for name, s in self.systems.items()
        }
        return out

    def table(self) -> str:
        """The figures as text tables."""
        d = self.as_dict()
        cats = list(CATEGORIES.values())
        convs = list(dict.fromkeys(q.conversation for q in self.questions))
        counts = {c: sum(q.category == c for q in self.questions) for c in cats}
        head = f"{'system':<34}" + "".join(f"{'R@' + str(k):>7}" for k in KS)
        head += "".join(f"{c[:11] + '@10':>15}" for c in cats)
        head += "".join(f"{'conv ' + c + '@10':>13}" for c in convs)
        lines = [
            f"LoCoMo evidence recall, {len(self.questions)} questions "
            + ", ".join(f"{c} {n}" for c, n in counts.items()),
            head,
        ]
        for name, fig in d["systems"].items():
            row = f"{name:<34}" + "".join(f"{_fmt(fig['overall'][k]):>7}" for k in KS)
            row += "".join(f"{_fmt(fig['by_category'][c]):>15}" for c in cats)
            row += "".join(f"{_fmt(fig['by_conversation'][c]):>13}" for c in convs)
            lines.append(row)
        lines.append("")
        lines.append(
            "held-out line: each conversation scored with the setting chosen on the others: "
            + ", ".join(f"{c} <- {s!r}" for c, s in self.chosen.items())
        )
        if self.sweep:
            lines.append(
                "sweep, recall@10 over all conversations (tuned-on, for reading): "
                + ", ".join(f"{name} {v:.3f}" for name, v in self.sweep.items())
            )
        lines.append(
            "'attune (defaults, ...)' lines use defaults chosen on these conversations: "
            "tuned-on figures, not held-out ones."
        )
        if RERANK_HELD_OUT in self.systems:
            lines.append(
                "The shipped reranker was trained on these conversations, so every line "
                "using it is tuned-on except the 'reranker refit' one: each conversation "
                "reranked by a model fitted on the other conversations alone (first stage "
                "as the defaults)."
            )
        lines.append("ingest: " + ", ".join(f"{k}={v}" for k, v in self.ingest.items()))
        lines.append(
            "search latency ms: " + ", ".join(f"{k}={v}" for k, v in self.latency_ms.items())
        )
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def recall(found: Sequence[set[str]], evidence: Sequence[str]) -> dict[int, float]:
    """Evidence recall at each k; ``found[i]`` holds the external ids of result ``i``."""
    gold = set(evidence)
    return {k: len(set().union(*found[:k]) & gold) / len(gold) for k in KS}


def _ask(
    memory: MemoryService, user_id: str, questions: Sequence[LocomoQuestion], latency: list[float]
) -> list[dict[int, float]]:
    out = []
    for q in questions:
        start = time.perf_counter()
        hits = memory.search(user_id, q.text, k=max(KS))
        latency.append((time.perf_counter() - start) * 1000)
        out.append(recall([{s["external_id"] or "" for s in h.sources} for h in hits], q.evidence))
    return out


def run_locomo_eval(
    memory: MemoryService, conversations: Sequence[Conversation], *, sweep: bool = True
) -> LocomoReport:
    """Import each conversation as a new user, ask its questions, score all systems.

    Args:
        memory: The memory service under test (its settings are the defaults scored;
            they are restored after the sweep). Use one over a fresh data directory.
        conversations: The conversations (``evals.suites.locomo.data.load``).
        sweep: Also choose among ``SWEEP`` per held-out conversation.

    Returns:
        The report; ``table()`` prints it.
    """
    questions = [q for c in conversations for q in c.questions]
    systems: dict[str, Scores] = {
        name: Scores()
        for name in (
            "attune (defaults, right after import)",
            "attune (defaults, vectors written)",
        )
    }
    immediate, settled = systems.values()
    latency: list[float] = []
    user_ids: dict[str, str] = {}
    ingest: dict[str, Any] = {
        "turns": 0,
        "import_s": 0.0,
        "dense_wait_s": 0.0,
        "first_search_ms": [],  # per conversation: it waits for the import's vectors
    }
    memory.embedder.embed(["warm up"])  # model load is start-up cost, not import cost
    for conv in conversations:
        with Session(memory.engine) as session:
            user, _key = repo.create_user(session, name=f"locomo:{conv.key}:{time.time_ns()}")
            session.commit()
            user_ids[conv.key] = user.id
        start = time.perf_counter()
        result = import_history(memory.engine, user_id=user.id, sessions=conv.sessions)
        memory.import_turns(result.new_turns)  # as the route: vectors may follow
        ingest["import_s"] += time.perf_counter() - start
        ingest["turns"] += result.turns_imported
        first: list[float] = []
        immediate.per_question.extend(_ask(memory, user.id, conv.questions, first))
        ingest["first_search_ms"].append(round(first[0], 1) if first else None)
        start = time.perf_counter()
        memory.wait_dense()
        ingest["dense_wait_s"] += time.perf_counter() - start
    for conv in conversations:
        settled.per_question.extend(_ask(memory, user_ids[conv.key], conv.questions, latency))
    ingest["import_turns_per_s"] = round(ingest["turns"] / max(ingest["import_s"], 1e-9), 1)
    ingest["import_s"] = round(ingest["import_s"], 3)
    ingest["dense_wait_s"] = round(ingest["dense_wait_s"], 3)
    chosen: dict[str, str] = {}
    swept: dict[str, float] = {}
    if sweep and len(conversations) > 1:
        systems["attune (held-out: setting chosen on other convs)"] = Scores(
            _leave_one_out(memory, conversations, user_ids, chosen, swept)
        )
    if sweep and len(conversations) > 1 and memory.settings.rerank:
        systems[RERANK_HELD_OUT] = Scores(_rerank_leave_one_out(memory, conversations, user_ids))
    for name in BASELINES:
        systems[f"baseline {name}"] = Scores()
    for conv in conversations:
        ranked = baseline_rankings(conv.turns, [q.text for q in conv.questions], memory.embedder)
        for name in BASELINES:
            systems[f"baseline {name}"].per_question.extend(
                recall([{i} for i in ids], q.evidence)
                for ids, q in zip(ranked[name], conv.questions, strict=True)
            )
    lat = (
        {
            "p50": round(percentile(latency, 50), 1),
            "p95": round(percentile(latency, 95), 1),
        }
        if latency
        else {}
    )
    return LocomoReport(questions, systems, chosen, swept, ingest, lat, user_ids)


def _rerank_leave_one_out(
    memory: MemoryService, conversations: Sequence[Conversation], user_ids: Mapping[str, str]
) -> list[dict[int, float]]:
    """Each conversation searched with a reranker fitted on the other conversations alone.

    The shipped reranker was trained on these conversations (``evals.rerank_train``), so
    the lines above that use it are tuned-on; this one refits it without the conversation
    it scores (and without the synthetic rows the shipped model also saw).
    """
    from evals.rerank_train import ask, leave_one_out

    groups = {
        c.key: [
            ask(memory, user_ids[c.key], q.text, q.evidence, source=f"locomo:{c.key}")
            for q in c.questions
        ]
        for c in conversations
    }
    scored = leave_one_out(groups, KS)
    return [s for c in conversations for s in scored[c.key]]


def _leave_one_out(
    memory: MemoryService,
    conversations: Sequence[Conversation],
    user_ids: Mapping[str, str],
    chosen: dict[str, str],
    swept: dict[str, float],
) -> list[dict[int, float]]:
    """Each conversation's scores under the sweep setting best on the other ones.

    Fills ``chosen`` (conversation → setting) and ``swept`` (setting → recall@10 over
    every conversation).
    """
    defaults = memory.settings
    by_setting: dict[str, dict[str, list[dict[int, float]]]] = {}
    try:
        for name, update in SWEEP.items():
            memory.settings = defaults.model_copy(update=update)
            by_setting[name] = {
                c.key: _ask(memory, user_ids[c.key], c.questions, []) for c in conversations
            }
            memory.settings = defaults
    finally:
        memory.settings = defaults
    out: list[dict[int, float]] = []
    for conv in conversations:

        def score(name: str, held: str = conv.key) -> float:
            values = [s[10] for c, per_q in by_setting[name].items() if c != held for s in per_q]
            return sum(values) / max(len(values), 1)

        best = max(SWEEP, key=score)  # ties: the first listed (defaults)
        chosen[conv.key] = best
        out.extend(by_setting[best][conv.key])
    for name, per_conv in by_setting.items():
        values = [s[10] for per_q in per_conv.values() for s in per_q]
        swept[name] = round(sum(values) / max(len(values), 1), 4)
    return out
