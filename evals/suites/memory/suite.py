"""Memory retrieval eval: recall of the gold source turns, hybrid against its own parts.

Imports the synthetic dataset (``evals.suites.memory.data``) into a fresh data directory through
the same path as ``POST /v1/users/{id}/history`` (``import_history`` then
``MemoryService.index_turns``), distills semantic memories, then asks every question in
three modes — ``hybrid`` and the two single-retriever baselines ``dense`` and ``lexical`` —
in the same run. A question scores recall@k: the fraction of its gold turns that are a
source of one of the top k memories. The headline searches episodic memories only (the
turns themselves); a second line searches every kind, where a fact distilled from a gold
turn counts too. Latency is the wall time of ``MemoryService.search`` (query embedding
included). Run it as ``attune eval memory``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from tqdm import tqdm

from evals.stats import paired_bootstrap, percentile
from evals.suites.memory.data import DataUser, MemoryDataset, Question
from evals.suites.memory.sweep import cell, dev_users, fusion_sweep, sweep_table
from memory.history import ImportSession, ImportTurn, import_history
from memory.records import db, repo
from memory.records.tables import Turn, User
from memory.retrieval.protocols import Embedder
from memory.service import MemoryService, Mode
from wiring.services import build_memory
from wiring.settings import Settings

MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")
KS = (5, 10, 20)
KIND_SETS: dict[str, list[str] | None] = {"episodic": ["episodic"], "all": None}


@dataclass
class ImportStats:
    """What importing the dataset did and how long it took."""

    user_ids: dict[str, str] = field(default_factory=dict)
    """Dataset user key → Attune user id."""
    turns_imported: int = 0
    turns_skipped: int = 0
    history_s: float = 0.0
    """Writing threads and turns (``import_history``)."""
    index_s: float = 0.0
    """Indexing them until the import call returns (``MemoryService.import_turns``):
    everything with ``import_dense="inline"``, rows and terms only with ``deferred``."""
    dense_wait_s: float = 0.0
    """With ``deferred``: how much longer the background vectors took after the last
    import returned (``MemoryService.wait_dense``)."""
    dense: str = "inline"
    distinct_texts: int = 0
    """Distinct texts among the imported turns (the embedder embeds each once per call)."""
    new_turns: list[Turn] = field(default_factory=list, repr=False)

    @property
    def turns_per_s(self) -> float | None:
        """Imported turns per second until the calls returned (``None``: none new)."""
        total = self.history_s + self.index_s
        return self.turns_imported / total if self.turns_imported and total > 0 else None

    @property
    def dense_turns_per_s(self) -> float | None:
        """Imported turns per second until every vector was written too."""
        total = self.history_s + self.index_s + self.dense_wait_s
        return self.turns_imported / total if self.turns_imported and total > 0 else None


@dataclass
class RunResult:
    """One mode over one set of kinds: recall at each k and search latency."""

    kinds: str
    mode: str
    recall: dict[int, float]
    latency_ms: dict[str, float]
    by_category: dict[str, float]
    """Recall@10 per question category."""
    held_out: float | None
    """Recall@10 on test users asked with test templates (``evals.suites.memory.sweep.cell``):
    the figure no setting was chosen on."""
    per_question: list[dict[int, float]] = field(repr=False)


@dataclass
class MemoryEvalReport:
    """Figures of one eval run and what they were measured with."""

    config: dict[str, Any]
    counts: dict[str, Any]
    ingest: dict[str, Any]
    results: list[RunResult]
    margins: dict[str, dict[str, Any]]
    """Per kinds set: hybrid's recall@10 against the better baseline."""
    misses: list[dict[str, Any]]
    """Headline (episodic, hybrid) questions with a gold turn outside the top 10."""
    user_ids: dict[str, str] = field(default_factory=dict)
    """Dataset user key → Attune user id."""
    sweep: dict[str, Any] | None = None
    """What-if fusion settings (``evals.suites.memory.sweep``), when asked for."""

    def result(self, kinds: str, mode: str) -> RunResult:
        """The result for ``kinds`` and ``mode``."""
        return next(r for r in self.results if r.kinds == kinds and r.mode == mode)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (without per-question figures)."""
        return {
            "config": self.config,
            "counts": self.counts,
            "ingest": self.ingest,
            "results": [
                {
                    "kinds": r.kinds,
                    "mode": r.mode,
                    "recall": {f"@{k}": round(v, 4) for k, v in r.recall.items()},
                    "latency_ms": {k: round(v, 2) for k, v in r.latency_ms.items()},
                    "recall@10_by_category": {k: round(v, 4) for k, v in r.by_category.items()},
                    "held_out_recall@10": r.held_out,
                }
                for r in self.results
            ],
            "margins": self.margins,
            "misses": self.misses,
            "user_ids": self.user_ids,
            "fusion_sweep": self.sweep,
        }

    def table(self) -> str:
        """A plain-text report."""
        c, n, i = self.config, self.counts, self.ingest
        fusion = ", ".join(f"{k}={v}" for k, v in c["retrieval"].items())
        lines = [
            f"Memory retrieval eval · dataset {c['dataset_version']} ({n['users']} users, "
            f"{n['turns']} turns, {n['questions']} questions)",
            f"embedder {c['embedder_model_id']} · {fusion}",
            f"machine: {c['machine_before']['cpus']} CPUs, load average (1/5/15 min) "
            f"{c['machine_before']['load_avg_1_5_15m']} before, "
            f"{c['machine_after']['load_avg_1_5_15m']} after",
            f"import ({i['dense']} vectors): {n['turns_imported']} turns "
            f"({n['distinct_texts']} distinct texts) at {_fmt(i['import_turns_per_s'], '.0f')} "
            f"turns/s until the calls returned (records {_fmt(i['history_s'], '.2f')} s + "
            f"indexing {_fmt(i['index_s'], '.2f')} s), "
            f"{_fmt(i['dense_turns_per_s'], '.0f')} turns/s until every vector was written "
            f"(+{_fmt(i['dense_wait_s'], '.2f')} s); distill {_fmt(i['distill_s'], '.1f')} s "
            f"→ {n['semantic_memories']} semantic memories",
            "",
            f"  {'kinds':<9} {'mode':<8} {'R@5':>6} {'R@10':>6} {'R@20':>6} "
            f"{'p50 ms':>8} {'p95 ms':>8}",
        ]
        for r in self.results:
            lines.append(
                f"  {r.kinds:<9} {r.mode:<8} {r.recall[5]:6.3f} {r.recall[10]:6.3f} "
                f"{r.recall[20]:6.3f} {r.latency_ms['p50']:8.1f} {r.latency_ms['p95']:8.1f}"
            )
        lines.append("")
        for kinds, m in self.margins.items():
            lines.append(
                f"  {kinds}: hybrid R@10 {m['hybrid']:.3f} vs best baseline {m['baseline']} "
                f"{m['baseline_value']:.3f}: {m['absolute']:+.3f} "
                f"({_fmt(m['relative'], '+.1%')}), "
                f"95% CI {m['ci95'][0]:+.3f}..{m['ci95'][1]:+.3f} (paired bootstrap)"
            )
        held = {m: self.result("episodic", m).held_out for m in MODES}
        lines.append(
            "  held-out R@10 (episodic; test users asked with test templates, nothing tuned "
            "on them): " + ", ".join(f"{m} {_fmt(v, '.3f')}" for m, v in held.items())
        )
        cats = sorted(self.result("episodic", "hybrid").by_category)
        lines += ["", "  recall@10 by category (episodic)   " + "".join(f"{m:>9}" for m in MODES)]
        counts = n["by_category"]
        for cat in cats:
            values = "".join(f"{self.result('episodic', m).by_category[cat]:9.3f}" for m in MODES)
            lines.append(f"    {cat:<10} ({counts.get(cat, 0):>3} questions)      {values}")
        if self.sweep is not None:
            lines += ["", sweep_table(self.sweep)]
        return "\n".join(lines)


def machine() -> dict[str, Any]:
    """CPU count and load average: latency figures mean little on a busy machine."""
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "load_avg_1_5_15m": load}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def eval_user_name(dataset: MemoryDataset, user: DataUser) -> str:
    """The Attune user name a dataset user is imported as (found again on a re-run)."""
    return f"eval:{dataset.version}:{user.key}"


def import_sessions(user: DataUser) -> list[ImportSession]:
    """A dataset user's sessions as ``import_history`` takes them."""
    return [
        ImportSession(
            id=s.id,
            started_at=s.started_at,
            turns=[ImportTurn(t.id, t.role, t.content, t.speaker, t.created_at) for t in s.turns],
        )
        for s in user.sessions
    ]


def import_dataset(
    engine: Engine, memory: MemoryService, dataset: MemoryDataset, *, progress: bool = False
) -> ImportStats:
    """Create (or find) each dataset user and import their history; idempotent."""
    stats = ImportStats()
    for user in tqdm(dataset.users, desc="import", unit="user", disable=not progress):
        name = eval_user_name(dataset, user)
        with Session(engine) as session:
            row = session.exec(select(User).where(User.name == name)).first()
            if row is None:
                row, _key = repo.create_user(session, name=name)
                session.commit()
            user_id = row.id
        stats.user_ids[user.key] = user_id
        start = time.perf_counter()
        result = import_history(engine, user_id=user_id, sessions=import_sessions(user))
        indexed = time.perf_counter()
        memory.import_turns(result.new_turns)
        stats.history_s += indexed - start
        stats.index_s += time.perf_counter() - indexed
        stats.turns_imported += result.turns_imported
        stats.turns_skipped += result.turns_skipped
        stats.new_turns.extend(result.new_turns)
    start = time.perf_counter()
    memory.wait_dense()  # questions need every vector
    stats.dense_wait_s = time.perf_counter() - start
    stats.dense = memory.settings.import_dense
    stats.distinct_texts = len({t.content for t in stats.new_turns})
    return stats


def recall_at(found: Sequence[set[str]], gold: Sequence[str]) -> dict[int, float]:
    """Recall at each k in ``KS``; ``found[i]`` holds the external ids of result ``i``."""
    out = {}
    for k in KS:
        seen = set().union(*found[:k]) if found[:k] else set()
        out[k] = len(seen & set(gold)) / len(gold)
    return out


def _margin(results: Sequence[RunResult]) -> dict[str, Any]:
    by_mode = {r.mode: r for r in results}
    hybrid = by_mode["hybrid"]
    best = max(("dense", "lexical"), key=lambda m: by_mode[m].recall[10])
    base = by_mode[best]
    diffs = [h[10] - b[10] for h, b in zip(hybrid.per_question, base.per_question, strict=True)]
    absolute = hybrid.recall[10] - base.recall[10]
    return {
        "hybrid": round(hybrid.recall[10], 4),
        "baseline": best,
        "baseline_value": round(base.recall[10], 4),
        "absolute": round(absolute, 4),
        "relative": round(absolute / base.recall[10], 4) if base.recall[10] else None,
        "ci95": paired_bootstrap(diffs),
    }


def _search_all(
    memory: MemoryService,
    questions: Sequence[Question],
    user_ids: dict[str, str],
    *,
    progress: bool,
) -> list[RunResult]:
    """Ask every question in every mode and kinds set (modes interleaved per question)."""
    scores: dict[tuple[str, str], list[dict[int, float]]] = {}
    latency: dict[tuple[str, str], list[float]] = {}
    for mode in MODES:  # warm-up: the first call of each path loads and caches things
        memory.search(user_ids[questions[0].user], "warm up", k=max(KS), mode=mode)
    for q in tqdm(questions, desc="questions", unit="q", disable=not progress):
        for kinds_name, kinds in KIND_SETS.items():
            for mode in MODES:
                start = time.perf_counter()
                hits = memory.search(user_ids[q.user], q.text, k=max(KS), kinds=kinds, mode=mode)
                latency.setdefault((kinds_name, mode), []).append(
                    (time.perf_counter() - start) * 1000
                )
                found = [{s["external_id"] or "" for s in h.sources} for h in hits]
                scores.setdefault((kinds_name, mode), []).append(recall_at(found, q.gold))
    results = []
    for (kinds_name, mode_name), per_q in scores.items():
        cats: dict[str, list[float]] = {}
        held: list[float] = []
        dev = dev_users(list(user_ids))
        for q, s in zip(questions, per_q, strict=True):
            cats.setdefault(q.category, []).append(s[10])
            if cell(q, dev) == "test":
                held.append(s[10])
        lat = latency[(kinds_name, mode_name)]
        results.append(
            RunResult(
                kinds=kinds_name,
                mode=mode_name,
                recall={k: sum(s[k] for s in per_q) / len(per_q) for k in KS},
                latency_ms={
                    "p50": percentile(lat, 50),
                    "p95": percentile(lat, 95),
                    "mean": sum(lat) / len(lat),
                },
                by_category={c: sum(v) / len(v) for c, v in sorted(cats.items())},
                held_out=sum(held) / len(held) if held else None,
                per_question=per_q,
            )
        )
    return results


def run_memory_eval(
    settings: Settings,
    *,
    dataset: MemoryDataset,
    limit_questions: int | None = None,
    embedder: Embedder | None = None,
    distill: bool = True,
    sweep: bool = False,
    progress: bool = False,
) -> MemoryEvalReport:
    """Import ``dataset`` into ``settings``' data directory and score retrieval on it.

    Args:
        settings: Where to work (use a fresh data directory: figures on a directory that
            holds other data are not comparable) and the retrieval settings under test.
        dataset: Users, histories and questions (``evals.suites.memory.data.load()``).
        limit_questions: Ask only the first N questions.
        embedder: A loaded embedder to share (tests); default: the configured one.
        distill: Also distill semantic memories, for the all-kinds line.
        sweep: Also score what-if fusion settings (``evals.suites.memory.sweep``).
        progress: Show progress bars.

    Returns:
        The report; ``report.table()`` prints it, ``report.as_dict()`` is its JSON.
    """
    before = machine()
    engine = db.open_engine(settings.db)
    try:
        memory = build_memory(settings, engine, embedder)
        memory.embedder.embed(["warm up"])  # model load is start-up cost, not import cost
        stats = import_dataset(engine, memory, dataset, progress=progress)
        start = time.perf_counter()
        semantic = memory.distill_many(stats.new_turns) if distill else 0
        distill_s = time.perf_counter() - start if distill else None
        questions = list(dataset.questions[:limit_questions])
        results = _search_all(memory, questions, stats.user_ids, progress=progress)
        swept = fusion_sweep(memory, questions, stats.user_ids) if sweep else None
    finally:
        engine.dispose()
    m = settings.memory
    categories: dict[str, int] = {}
    for q in questions:
        categories[q.category] = categories.get(q.category, 0) + 1
    headline = {r.mode: r for r in results if r.kinds == "episodic"}["hybrid"]
    misses = [
        {"id": q.id, "category": q.category, "text": q.text, "recall@10": s[10]}
        for q, s in zip(questions, headline.per_question, strict=True)
        if s[10] < 1
    ]
    return MemoryEvalReport(
        config={
            "dataset_version": dataset.version,
            "dataset_seed": dataset.seed,
            "embedder_model_id": memory.embedder.model_id,
            "extractor": m.extractor,
            "machine_before": before,
            "machine_after": machine(),
            "retrieval": {
                "dense_weight": m.dense_weight,
                "lexical_weight": m.lexical_weight,
                "recency_weight": m.recency_weight,
                "rrf_k": m.rrf_k,
                "fetch_k": m.fetch_k,
            },
        },
        counts={
            "users": len(dataset.users),
            "turns": sum(len(u.turns()) for u in dataset.users),
            "questions": len(questions),
            "turns_imported": stats.turns_imported,
            "distinct_texts": stats.distinct_texts,
            "turns_skipped": stats.turns_skipped,
            "semantic_memories": semantic,
            "by_category": categories,
        },
        ingest={
            "history_s": round(stats.history_s, 3),
            "index_s": round(stats.index_s, 3),
            "import_turns_per_s": round(stats.turns_per_s, 1) if stats.turns_per_s else None,
            "dense": stats.dense,
            "dense_wait_s": round(stats.dense_wait_s, 3),
            "dense_turns_per_s": (
                round(stats.dense_turns_per_s, 1) if stats.dense_turns_per_s else None
            ),
            "distill_s": round(distill_s, 3) if distill_s is not None else None,
        },
        results=results,
        margins={kinds: _margin([r for r in results if r.kinds == kinds]) for kinds in KIND_SETS},
        misses=misses,
        user_ids=stats.user_ids,
        sweep=swept,
    )
