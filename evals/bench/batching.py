"""Benchmark batching in the local engine: aggregate tokens per second under concurrency.

``streams`` requests start at once, each in its own thread (as the server's requests
do), each a greedy reply of ``max_tokens`` tokens (``ignore_eos``, so every reply has the
same length). The aggregate rate is all their tokens over the wall time from the start
until the last one ends. Two engines over the same model directory are measured in the
same run, taking turns: ``baseline`` generates each request alone, ``max_concurrency``
at a time (``max_batch=1``, the path before batching), and ``batched`` generates them
together (``max_batch``).

Run from ``python -m evals.bench.local --streams 1,8,32``.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

from adapters.engine import LocalEngine

PROMPTS = [
    "Write one sentence about the sea.",
    "Name three colours of the rainbow.",
    "What is the capital of France? Answer briefly, please.",
    "Say hello.",
]
"""Prompts of different lengths, taken in turn by the streams."""


def aggregate_rate(engine: LocalEngine, *, streams: int, max_tokens: int) -> dict[str, float]:
    """Run ``streams`` requests at once on ``engine``.

    Args:
        engine: The engine to measure.
        streams: Requests started together.
        max_tokens: Tokens per reply.

    Returns:
        ``wall_s``, ``tokens`` (all replies together) and ``tokens_per_s``.
    """
    start = threading.Barrier(streams + 1)
    counts = [0] * streams

    def work(i: int) -> None:
        messages = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        start.wait()
        reply = engine.generate(messages, max_new_tokens=max_tokens, temperature=0, ignore_eos=True)
        counts[i] = reply.usage.completion_tokens

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "tokens": float(sum(counts)), "tokens_per_s": sum(counts) / wall}


def run(
    model_dir: Path,
    *,
    streams: list[int],
    max_tokens: int = 32,
    runs: int = 1,
    max_batch: int = 32,
    max_concurrency: int = 2,
) -> dict[str, Any]:
    """Measure batched against one-at-a-time generation at each stream count.

    Args:
        model_dir: A converted model directory.
        streams: Concurrent request counts to measure (e.g. ``[1, 8, 32]``).
        max_tokens: Tokens per reply.
        runs: Measured rounds per stream count and engine (after one warm-up); the
            median is reported.
        max_batch: The batched engine's ``max_batch``.
        max_concurrency: The baseline engine's ``max_concurrency`` (today's default: 2).

    Returns:
        ``max_tokens``, ``max_batch``, ``max_concurrency`` and ``rows``: per stream
        count, ``streams``, ``baseline`` and ``batched`` (``wall_s``, ``tokens``,
        ``tokens_per_s``), ``speedup`` (batched over baseline tokens per second) and
        ``mean_batch`` (rows per decode step in the batched engine).
    """
    engines = {
        "baseline": LocalEngine.load(
            model_dir, adapters_dir=None, max_batch=1, max_concurrency=max_concurrency
        ),
        "batched": LocalEngine.load(model_dir, adapters_dir=None, max_batch=max_batch),
    }
    for engine in engines.values():
        aggregate_rate(engine, streams=2, max_tokens=4)  # warm-up
    rows: list[dict[str, Any]] = []
    for count in streams:
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
        scheduler = engines["batched"].scheduler
        assert scheduler is not None
        steps, stepped = scheduler.steps, scheduler.rows_stepped
        # Taking turns, so a busy neighbour on a shared machine slows both alike.
        for _ in range(runs):
            for name, engine in engines.items():
                samples[name].append(aggregate_rate(engine, streams=count, max_tokens=max_tokens))
        row: dict[str, Any] = {"streams": count}
        for name, taken in samples.items():
            row[name] = {key: statistics.median(s[key] for s in taken) for key in taken[0]}
        row["speedup"] = row["batched"]["tokens_per_s"] / row["baseline"]["tokens_per_s"]
        row["mean_batch"] = (scheduler.rows_stepped - stepped) / max(1, scheduler.steps - steps)
        rows.append(row)
    return {
        "max_tokens": max_tokens,
        "max_batch": max_batch,
        "max_concurrency": max_concurrency,
        "rows": rows,
    }


def format_table(results: dict[str, Any]) -> str:
    """Render :func:`run`'s results as a small text table."""
    lines = [
        f"aggregate tokens/s, {results['max_tokens']} tokens per reply; baseline: max_batch=1, "
        f"max_concurrency={results['max_concurrency']}; batched: "
        f"max_batch={results['max_batch']}",
        "",
        f"{'streams':>8}{'baseline tok/s':>16}{'batched tok/s':>15}{'speedup':>9}"
        f"{'mean batch':>12}",
    ]
    for row in results["rows"]:
        lines.append(
            f"{row['streams']:>8}{row['baseline']['tokens_per_s']:>16.1f}"
            f"{row['batched']['tokens_per_s']:>15.1f}{row['speedup']:>8.1f}x"
            f"{row['mean_batch']:>12.1f}"
        )
    return "\n".join(lines)
