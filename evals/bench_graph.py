"""Benchmark: the per-turn graph's own overhead, excluding generation.

Runs ``--turns`` real turns (real SQLite, real checkpointer, real local model, short
replies) spread over a few threads, and reports the overhead per turn — turn wall time
minus the generation time the ``generate`` node measured — as p50/p95, beside the
generation time itself (the baseline, measured in the same run).

    python -m evals.bench_graph --turns 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from evals.stats import median, percentile, table
from graph.runner import ChatMessage, TurnRequest
from graph.state import GenerationParams
from memory.records import repo
from wiring.settings import Settings
from wiring.stack import open_stack as open_services

PROMPTS = [
    "I just moved to Lisbon and I'm learning Portuguese.",
    "What's a good way to practise verbs every day?",
    "My cat Biscuit keeps waking me up at 5am.",
    "Any idea how to get her to sleep longer?",
    "Remind me what city I moved to?",
]


async def run(
    turns: int, threads: int, max_tokens: int, model_cache: Path | None
) -> dict[str, float]:
    """Run the benchmark and return its figures (milliseconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            admin_key="bench",
            model={"cache_dir": model_cache} if model_cache else {},
        )
        async with open_services(settings) as services:
            with services.store.session() as session:
                user, _ = repo.create_user(session, name="bench")
                session.commit()
            thread_ids: list[str | None] = [None] * threads
            overhead, generation, total = [], [], []
            for i in tqdm(range(turns), desc="turns", unit="turn"):
                slot = i % threads
                request = TurnRequest(
                    messages=[ChatMessage(role="user", content=PROMPTS[i % len(PROMPTS)])],
                    params=GenerationParams(model="attune", max_tokens=max_tokens, temperature=0),
                    thread_id=thread_ids[slot],
                )
                start = time.perf_counter()
                result = await services.runner.run(user.id, request)
                wall = (time.perf_counter() - start) * 1000
                thread_ids[slot] = result.thread_id
                total.append(wall)
                generation.append(result.usage["latency_ms"])
                overhead.append(wall - result.usage["latency_ms"])
    return {
        "overhead_p50_ms": percentile(overhead, 50),
        "overhead_p95_ms": percentile(overhead, 95),
        "generation_p50_ms": median(generation),
        "turn_p50_ms": median(total),
        "overhead_share": median(overhead) / median(total),
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=100, help="turns to run (default 100)")
    parser.add_argument("--threads", type=int, default=5, help="threads they are spread over")
    parser.add_argument("--max-tokens", type=int, default=8, help="reply length (default 8)")
    parser.add_argument(
        "--model-cache", type=Path, default=Path(".attune/models"), help="converted-model cache"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    figures = asyncio.run(run(args.turns, args.threads, args.max_tokens, args.model_cache))
    print(
        f"\nGraph overhead per turn over {args.turns} turns "
        f"(local model, {args.max_tokens}-token replies):"
    )
    print(
        table(
            [
                ("overhead p50", f"{figures['overhead_p50_ms']:.1f} ms"),
                ("overhead p95", f"{figures['overhead_p95_ms']:.1f} ms"),
                ("generation p50 (baseline)", f"{figures['generation_p50_ms']:.1f} ms"),
                ("whole turn p50", f"{figures['turn_p50_ms']:.1f} ms"),
                ("overhead / whole turn", f"{figures['overhead_share']:.1%}"),
            ]
        )
    )


if __name__ == "__main__":
    main()
