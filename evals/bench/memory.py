"""Benchmark: retrieval latency as one user's memories grow, and history-import throughput.

Import: a 2,000-turn history (the eval dataset's turns) goes through the same path as
``POST /v1/users/{id}/history``: ``import_history`` then ``MemoryService.import_turns``,
once with vectors written inline and once deferred to the service's background thread
(timed until the call returns and until every vector is written). The dataset repeats
many short texts and a call embeds each distinct text once, so the distinct-text rate is
printed too: it is the figure that carries over to histories without repeats. The
embedding model is loaded before the clock starts.

Retrieval: one user gets N short memories (1k → 10k → 100k, loaded incrementally), then
hybrid ``MemoryService.search`` (and the dense and lexical paths alone) is timed with the
dataset's questions. Loading 100k memories through the import path would spend minutes
embedding on two cores, so the load is synthetic: a pool of distinct texts (default 5,000,
made by varying the dataset's turns) is embedded for real; memory i beyond the pool reuses
the vector of pool text ``i mod pool`` plus small Gaussian noise, renormalized (cosine to
its parent ≈ 0.96), and a varied text; rows, vectors and terms are written directly
(``memories`` table, ``VectorIndex.upsert``, ``LexicalIndex.upsert``). Run it as
``attune eval retrieval-bench``.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session
from tqdm import tqdm

from evals.stats import percentile
from evals.suites.memory import phrases as P
from evals.suites.memory.data import MemoryDataset, load
from evals.suites.memory.suite import MODES, import_sessions, machine
from memory.extraction.extractor import content_hash
from memory.history import ImportSession, import_history
from memory.records import db, repo
from memory.records.tables import Memory, new_id
from memory.retrieval.protocols import Embedder, IndexEntry
from memory.service import MemoryService
from wiring.services import build_memory
from wiring.settings import Settings

FUSED_ONLY = "hybrid, no rerank"
"""The latency key of hybrid search without the reranker (its cost's baseline)."""
NOISE_NORM = 0.3
"""Length of the noise added to a reused unit vector (cosine to the original ≈ 0.96)."""
CHUNK = 1_000


@dataclass
class SizePoint:
    """Search latency (milliseconds) with ``size`` memories."""

    size: int
    latency_ms: dict[str, dict[str, float]]
    load_s: float
    """Seconds it took to add the memories since the previous point."""


@dataclass
class BenchReport:
    """Figures of one benchmark run."""

    config: dict[str, Any]
    import_: dict[str, dict[str, float]]
    """Per ``import_dense`` mode (``inline``, ``deferred``): see ``_time_import``."""
    points: list[SizePoint] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "config": self.config,
            "import": self.import_,
            "retrieval": [
                {"size": p.size, "load_s": round(p.load_s, 2), "latency_ms": p.latency_ms}
                for p in self.points
            ],
        }

    def table(self) -> str:
        """A plain-text report."""
        c = self.config
        lines = [
            f"History import (embedder {c['embedder_model_id']} on {c['embed_backend']}, "
            f"batch {c['embed_batch_size']}):"
        ]
        for dense, i in self.import_.items():
            lines.append(
                f"  vectors {dense:<8}: {i['turns']:.0f} turns ({i['distinct_texts']:.0f} distinct "
                f"texts): {i['turns_per_s_returned']:.0f} turns/s until the call returned "
                f"({i['returned_s']:.2f} s), {i['turns_per_s_total']:.0f} turns/s until every "
                f"vector was written ({i['total_s']:.2f} s; "
                f"{i['distinct_texts_per_s_total']:.0f} distinct texts/s)"
            )
        lines += [
            "",
            f"Search latency, one user, k={c['k']}, all kinds, {c['queries']} queries per "
            f"point (query embedding included; embedding alone p50 "
            f"{c['embed_query_p50_ms']:.1f} ms):",
            "  " + f"{'memories':>9}" + "".join(f"{m + ' p50':>13}{m + ' p95':>13}" for m in MODES),
        ]
        for p in self.points:
            cells = "".join(
                f"{p.latency_ms[m]['p50']:13.1f}{p.latency_ms[m]['p95']:13.1f}" for m in MODES
            )
            lines.append(f"  {p.size:>9,}{cells}")
        lines += ["", "  hybrid without the reranker (the baseline of its cost, same queries):"]
        for p in self.points:
            f, h = p.latency_ms[FUSED_ONLY], p.latency_ms["hybrid"]
            lines.append(
                f"  {p.size:>9,}  p50 {f['p50']:.1f} / p95 {f['p95']:.1f} ms; with it "
                f"p50 {h['p50']:.1f} / p95 {h['p95']:.1f} ms "
                f"(x{h['p95'] / max(f['p95'], 1e-9):.2f} at p95)"
            )
        lines += ["", "  the indexes alone (fetch_k results, no embedding, rows or provenance):"]
        for p in self.points:
            v, x = p.latency_ms["vector index"], p.latency_ms["lexical index"]
            lines.append(
                f"  {p.size:>9,}  vector p50 {v['p50']:.1f} / p95 {v['p95']:.1f} ms, "
                f"lexical p50 {x['p50']:.1f} / p95 {x['p95']:.1f} ms"
            )
        lines += [
            "",
            f"Machine: {c['machine_before']['cpus']} CPUs, load average (1/5/15 min) "
            f"{c['machine_before']['load_avg_1_5_15m']} before, "
            f"{c['machine_after']['load_avg_1_5_15m']} after.",
            f"Load: {c['pool']:,} distinct texts embedded for real ({c['pool_embed_s']:.1f} s); "
            "beyond that, vectors are reused with noise (see --help). Rows, vectors and terms "
            "written directly through the index protocols.",
        ]
        return "\n".join(lines)


def _vocabulary() -> dict[str, list[str]]:
    names = P.NAMES + P.PARTNERS + P.SIBLINGS + P.FRIENDS + P.PET_NAMES
    return {"name": names, "city": P.CITIES, "month": P.MONTHS, "lang": P.LANGUAGES}


def _varier(rng: random.Random) -> Callable[[str], str]:
    """A function that makes a new, similar text: other names, places, months, numbers."""
    vocab = _vocabulary()
    words = {w: cat for cat, ws in vocab.items() for w in ws}
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len)[::-1]) + r")\b"
    )
    tails = ["Anyway.", "Just thinking out loud.", "More on that later.", "Long day."]

    def vary(text: str) -> str:
        out = pattern.sub(lambda m: rng.choice(vocab[words[m.group(0)]]), text)
        out = re.sub(r"\d", lambda _: str(rng.randint(0, 9)), out)
        if out == text:
            out = f"{text} {rng.choice(tails)} (day {rng.randint(1, 999)})"
        return out

    return vary


def _texts(dataset: MemoryDataset, n: int, pool: int, rng: random.Random) -> list[str]:
    """``n`` texts; text ``i`` beyond ``pool`` is a variation of text ``i mod pool``.

    The pool is the dataset's distinct turns, then variations of them.
    """
    base = list(dict.fromkeys(t.content for u in dataset.users for t in u.turns()))
    vary, out = _varier(rng), base[:pool]
    while len(out) < pool:
        out.append(vary(base[len(out) % len(base)]))
    while len(out) < n:
        out.append(vary(out[len(out) % pool]))
    return out


def _unit(v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12))


def _load(
    engine: Engine,
    memory: MemoryService,
    user_id: str,
    texts: Sequence[str],
    vectors: np.ndarray[Any, Any],
    *,
    start: int,
    stop: int,
    origin: datetime,
    rng: np.random.Generator,
    progress: bool,
) -> None:
    """Add memories ``start``..``stop``: memory ``i`` was said 7 minutes after ``i - 1``.

    Beyond the pool, a memory reuses pool vector ``i mod pool`` with noise.
    """
    pool = len(vectors)
    for lo in tqdm(range(start, stop, CHUNK), desc=f"load {stop:,}", disable=not progress):
        hi = min(lo + CHUNK, stop)
        idx = np.arange(lo, hi)
        vecs = vectors[idx % pool]
        reused = idx >= pool
        if reused.any():
            noise = rng.normal(size=(int(reused.sum()), vecs.shape[1]))
            noise *= NOISE_NORM / np.linalg.norm(noise, axis=1, keepdims=True)
            vecs = vecs.copy()
            vecs[reused] = _unit(vecs[reused] + noise)
        entries = []
        for i in range(lo, hi):
            at = origin + timedelta(minutes=7 * i)
            kind = "fact" if i % 7 == 0 else "episodic"
            entries.append(IndexEntry(new_id("mem"), texts[i], kind, at.timestamp()))
        rows = [
            {
                "id": e.memory_id,
                "user_id": user_id,
                "kind": e.kind,
                "text": e.text,
                "speaker": "user",
                "content_hash": content_hash(e.text),
                "created_at": datetime.fromtimestamp(e.created_at, UTC),
                "valid_from": datetime.fromtimestamp(e.created_at, UTC),
                # Sessions of 20: hybrid search reads neighbours within a thread.
                "thread_id": f"thr_bench{i // 20:06d}",
            }
            for i, e in zip(range(lo, hi), entries, strict=True)
        ]
        memory.vectors.upsert(user_id, entries, vecs.tolist())
        memory.lexical.upsert(user_id, entries)
        with Session(engine) as session:
            session.execute(insert(Memory), rows)
            session.commit()


def _time_searches(
    memory: MemoryService, user_id: str, queries: Sequence[str], k: int
) -> dict[str, dict[str, float]]:
    for mode in MODES:
        for q in queries[:3]:
            memory.search(user_id, q, k=k, mode=mode)
    lat: dict[str, list[float]] = {
        m: [] for m in (*MODES, FUSED_ONLY, "vector index", "lexical index")
    }
    fetch = max(memory.settings.fetch_k, k)
    with_rerank = memory.settings
    without = with_rerank.model_copy(update={"rerank": False})
    for q in queries:
        for mode in MODES:
            start = time.perf_counter()
            memory.search(user_id, q, k=k, mode=mode)
            lat[mode].append((time.perf_counter() - start) * 1000)
        # The same hybrid search without the second stage: the reranker's cost.
        memory.settings = without
        try:
            start = time.perf_counter()
            memory.search(user_id, q, k=k, mode="hybrid")
            lat[FUSED_ONLY].append((time.perf_counter() - start) * 1000)
        finally:
            memory.settings = with_rerank
        # The indexes alone (no query embedding, rows or provenance): what search adds.
        vector = memory.embedder.embed([q])[0]
        start = time.perf_counter()
        memory.vectors.query(user_id, vector, k=fetch)
        lat["vector index"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        memory.lexical.query(user_id, q, k=fetch)
        lat["lexical index"].append((time.perf_counter() - start) * 1000)
    return {
        m: {"p50": round(percentile(v, 50), 2), "p95": round(percentile(v, 95), 2)}
        for m, v in lat.items()
    }


def _time_import(
    engine: Engine, memory: MemoryService, sessions: Sequence[ImportSession], dense: str
) -> dict[str, float]:
    """Import ``sessions`` for a new user as the history route does, vectors ``dense``.

    ``returned_s`` is until ``import_turns`` returned (the HTTP answer), ``total_s`` until
    every vector was written too (``wait_dense``).
    """
    with Session(engine) as session:
        user = repo.create_user(session, name=f"bench:import:{dense}")[0]
        user_id = user.id
        session.commit()
    memory.settings = memory.settings.model_copy(update={"import_dense": dense})
    t0 = time.perf_counter()
    result = import_history(engine, user_id=user_id, sessions=sessions)
    t1 = time.perf_counter()
    memory.import_turns(result.new_turns)
    t2 = time.perf_counter()
    memory.wait_dense()
    t3 = time.perf_counter()
    n = result.turns_imported
    return {
        "turns": n,
        "distinct_texts": len({t.content for t in result.new_turns}),
        "history_s": round(t1 - t0, 3),
        "index_s": round(t2 - t1, 3),
        "returned_s": round(t2 - t0, 3),
        "total_s": round(t3 - t0, 3),
        "turns_per_s_returned": round(n / (t2 - t0), 1),
        "turns_per_s_total": round(n / (t3 - t0), 1),
        "distinct_texts_per_s_total": round(
            len({t.content for t in result.new_turns}) / (t3 - t0), 1
        ),
    }


def _import_sessions(dataset: MemoryDataset, turns: int) -> list[ImportSession]:
    """Sessions from the dataset, in order, until they hold ``turns`` turns."""
    out: list[ImportSession] = []
    left = turns
    for user in dataset.users:
        for s in import_sessions(user):
            if left <= 0:
                return out
            out.append(ImportSession(s.id, s.started_at, list(s.turns)[:left]))
            left -= len(out[-1].turns)
    return out


@contextmanager
def _settings_or_temp(settings: Settings | None) -> Iterator[Settings]:
    if settings is not None:
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as tmp:
        yield Settings(data_dir=Path(tmp), admin_key="bench")


def bench_retrieval(
    sizes: Sequence[int] = (1_000, 10_000, 100_000),
    queries: int = 200,
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    dataset: MemoryDataset | None = None,
    pool: int = 5_000,
    import_turns: int = 2_000,
    k: int = 10,
    seed: int = 0,
    progress: bool = False,
) -> BenchReport:
    """Time a history import, then search latency at each size (see the module docstring).

    Args:
        sizes: Memory counts to measure at, for one user (loaded incrementally).
        queries: Searches per mode and size (the dataset's questions, cycled).
        settings: Where to work (a fresh data directory); default: a temporary one.
        embedder: A loaded embedder to share; default: the configured one.
        dataset: Source of turns and questions; default: ``evals.suites.memory.data.load()``.
        pool: Distinct texts embedded for real; larger sizes reuse their vectors.
        import_turns: Turns in the timed import.
        k: Results per search.
        seed: Seed of the synthetic load.
        progress: Show progress bars.

    Returns:
        The report; ``report.table()`` prints it, ``report.as_dict()`` is its JSON.
    """
    data = dataset or load()
    rng = random.Random(seed)
    questions = [q.text for q in data.questions]
    queries_text = [questions[i % len(questions)] for i in range(queries)]
    before = machine()
    with _settings_or_temp(settings) as s:
        engine = db.open_engine(s.db)
        try:
            memory = build_memory(s, engine, embedder)
            memory.embedder.embed(["warm up"])
            with Session(engine) as session:
                reader = repo.create_user(session, name="bench:retrieval")[0]
                reader_id = reader.id
                session.commit()
            sessions = _import_sessions(data, import_turns)
            imports = {
                dense: _time_import(engine, memory, sessions, dense)
                for dense in ("inline", "deferred")
            }
            embed_lat = []
            for q in queries_text[:50]:
                start = time.perf_counter()
                memory.embedder.embed([q])
                embed_lat.append((time.perf_counter() - start) * 1000)
            n_pool = min(pool, max(sizes))
            texts = _texts(data, max(sizes), n_pool, rng)
            start = time.perf_counter()
            vectors = np.asarray(memory.embedder.embed(texts[:n_pool]), dtype=np.float32)
            pool_s = time.perf_counter() - start
            report = BenchReport(
                config={
                    "embedder_model_id": memory.embedder.model_id,
                    "machine_before": before,
                    "embed_batch_size": s.memory.embed_batch_size,
                    "embed_backend": s.memory.embed_backend,
                    "k": k,
                    "queries": queries,
                    "pool": n_pool,
                    "pool_embed_s": round(pool_s, 2),
                    "noise_norm": NOISE_NORM,
                    "embed_query_p50_ms": round(percentile(embed_lat, 50), 2),
                    "retrieval": s.memory.model_dump(
                        include={
                            "dense_weight",
                            "lexical_weight",
                            "recency_weight",
                            "rrf_k",
                            "fetch_k",
                        }
                    ),
                },
                import_=imports,
            )
            np_rng, loaded = np.random.default_rng(seed), 0
            origin = datetime.now(UTC) - timedelta(minutes=7 * max(sizes))
            for size in sorted(sizes):
                start = time.perf_counter()
                _load(
                    engine,
                    memory,
                    reader_id,
                    texts,
                    vectors,
                    start=loaded,
                    stop=size,
                    origin=origin,
                    rng=np_rng,
                    progress=progress,
                )
                load_s, loaded = time.perf_counter() - start, size
                latency = _time_searches(memory, reader_id, queries_text, k)
                report.points.append(SizePoint(size, latency, load_s))
                if progress:
                    tqdm.write(f"{size:>9,} memories: {latency}")
        finally:
            engine.dispose()
    report.config["machine_after"] = machine()
    return report
