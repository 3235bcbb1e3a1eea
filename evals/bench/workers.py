"""Benchmark: distillation through the workers, against distilling inline, in one run.

The embedded default by default (SQLite broker, worker in the process); ``--broker`` names
another (``redis://127.0.0.1:6379/12``).

* Lag: from a turn's response to the fact distilled from it being searchable (p50/p95),
  over ``--turns`` real turns (real local model, short replies, real MiniLM and Chroma).
  Baseline: the time ``MemoryService.distill`` takes inline for the same kind of turn —
  what each turn's response used to wait for.
* Throughput: ``--jobs`` distill jobs queued up front, then one embedded worker (the
  light queue's threads) started: jobs/s until all succeeded. Baseline: the same work
  (``workers.handlers.distill``: semantic memories and style statistics) on the same
  number of turns, called directly one after another.

    python -m evals.bench.workers --turns 30 --jobs 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from evals.stats import median, percentile, table
from graph.runner import ChatMessage, TurnRequest
from graph.state import GenerationParams
from memory.history import ImportSession, ImportTurn, import_history
from memory.records import jobs, repo
from memory.records.jobs import Job
from memory.service import MemoryService
from wiring.settings import Settings
from wiring.stack import open_stack as open_services
from workers import handlers, submit
from workers.context import WorkerContext
from workers.embedded import EmbeddedWorker

NAMES = ["Biscuit", "Pepper", "Mochi", "Olive", "Ziggy", "Nimbus", "Tofu", "Waffles"]


def _fact(i: int) -> tuple[str, str]:
    """A message stating a fact, and a word that only the fact's memory contains."""
    token = f"{NAMES[i % len(NAMES)]}{i}"
    return f"I adopted a cat named {token}.", token


def _found(memory: MemoryService, user_id: str, token: str) -> bool:
    hits = memory.search(user_id, token, k=1, kinds=["fact"], mode="lexical")
    return any(token in h.text for h in hits)


async def lag(settings: Settings, turns: int, max_tokens: int) -> dict[str, float]:
    """Turn response → distilled fact searchable, and the inline distill baseline (ms)."""
    settings.worker.embedded = True
    async with open_services(settings) as services:
        with services.store.session() as session:
            user, _ = repo.create_user(session, name="bench-lag")
            session.commit()
        lags: list[float] = []
        for i in range(turns):
            text, token = _fact(i)
            request = TurnRequest(
                messages=[ChatMessage(role="user", content=text)],
                params=GenerationParams(model="attune", max_tokens=max_tokens, temperature=0),
            )
            await services.runner.run(user.id, request)
            responded = time.perf_counter()
            while not await asyncio.to_thread(_found, services.memory, user.id, token):
                if time.perf_counter() - responded > 60:
                    raise RuntimeError(f"turn {i}: nothing distilled after 60 s")
                await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - responded) * 1000)
        # Baseline: inline distillation of the same kind of turn (another user, no queue).
        with services.store.session() as session:
            other, _ = repo.create_user(session, name="bench-inline")
            session.commit()
        imported = import_history(
            services.engine, user_id=other.id, sessions=_sessions(turns, offset=10_000)
        )
        inline = []
        for turn in imported.new_turns:
            start = time.perf_counter()
            services.memory.distill(turn)
            inline.append((time.perf_counter() - start) * 1000)
    return {
        "lag_p50_ms": percentile(lags, 50),
        "lag_p95_ms": percentile(lags, 95),
        "inline_p50_ms": median(inline),
        "inline_p95_ms": percentile(inline, 95),
    }


def _sessions(n: int, offset: int) -> list[ImportSession]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        ImportSession(
            id=f"s{offset + i}",
            started_at=start,
            turns=[ImportTurn(id=f"t{offset + i}", role="user", content=_fact(offset + i)[0])],
        )
        for i in range(n)
    ]


async def throughput(settings: Settings, n: int) -> dict[str, float]:
    """Jobs/s one embedded worker sustains on queued distill jobs, and inline turns/s."""
    settings.worker.embedded = False  # queue everything first, then start the worker
    async with open_services(settings) as services:
        with services.store.session() as session:
            user, _ = repo.create_user(session, name="bench-throughput")
            other, _ = repo.create_user(session, name="bench-inline-many")
            session.commit()
        queued = import_history(services.engine, user_id=user.id, sessions=_sessions(n, 0))
        for turn in queued.new_turns:
            submit.distill(services.jobs, [turn])
        baseline = import_history(services.engine, user_id=other.id, sessions=_sessions(n, 20_000))
        context = WorkerContext(
            core=services.core, make_graph_services=lambda: services.runner.services
        )
        # Baseline: the task's own work (distill + style statistics), called directly.
        start = time.perf_counter()
        for turn in baseline.new_turns:
            job = Job(kind="distill", key=turn.id, queue="light", payload={"turn_ids": [turn.id]})
            handlers.distill(context, job)
        inline_s = time.perf_counter() - start

        worker = EmbeddedWorker(settings, context, queues=("light",), beat=False)
        start = time.perf_counter()
        await asyncio.to_thread(worker.start)
        try:
            while True:
                busy = [
                    *jobs.list_jobs(services.engine, status="queued", limit=1),
                    *jobs.list_jobs(services.engine, status="running", limit=1),
                ]
                if not busy:
                    break
                await asyncio.sleep(0.02)
            worker_s = time.perf_counter() - start
        finally:
            await asyncio.to_thread(worker.stop)
        failed = jobs.list_jobs(services.engine, status="failed", limit=n)
        if failed:
            raise RuntimeError(f"{len(failed)} jobs failed: {failed[0].error}")
    return {"worker_jobs_per_s": n / worker_s, "inline_turns_per_s": n / inline_s}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=30, help="turns for the lag (default 30)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs for throughput (200)")
    parser.add_argument("--max-tokens", type=int, default=8, help="reply length (default 8)")
    parser.add_argument("--broker", default=None, help="broker URL (default: embedded SQLite)")
    parser.add_argument(
        "--model-cache", type=Path, default=Path(".attune/models"), help="converted-model cache"
    )
    args = parser.parse_args()
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    def settings(tmp: str) -> Settings:
        worker = {"broker_url": args.broker} if args.broker else {}
        return Settings(
            data_dir=Path(tmp),
            admin_key="bench",
            model={"cache_dir": args.model_cache},
            worker=worker,
        )

    with tempfile.TemporaryDirectory() as tmp:
        lags = asyncio.run(lag(settings(tmp), args.turns, args.max_tokens))
    with tempfile.TemporaryDirectory() as tmp:
        rate = asyncio.run(throughput(settings(tmp), args.jobs))
    broker = args.broker or "embedded SQLite broker"
    print(f"\nDistillation through the workers ({broker}, light queue, 2 threads):")
    print(
        table(
            [
                (f"lag p50 ({args.turns} turns)", f"{lags['lag_p50_ms']:.0f} ms"),
                ("lag p95", f"{lags['lag_p95_ms']:.0f} ms"),
                ("inline distill p50 (baseline)", f"{lags['inline_p50_ms']:.0f} ms"),
                ("inline distill p95", f"{lags['inline_p95_ms']:.0f} ms"),
                ("lag p50 / inline p50", f"{lags['lag_p50_ms'] / lags['inline_p50_ms']:.1f}x"),
                (f"worker jobs/s ({args.jobs} queued)", f"{rate['worker_jobs_per_s']:.1f}"),
                ("direct calls/s (baseline)", f"{rate['inline_turns_per_s']:.1f}"),
                (
                    "worker / inline",
                    f"{rate['worker_jobs_per_s'] / rate['inline_turns_per_s']:.2f}x",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
