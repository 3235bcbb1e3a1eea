"""Benchmark: the per-turn graph's own overhead, excluding generation.

Runs ``--turns`` real turns (real SQLite, real checkpointer, real local model, short
replies) spread over a few threads, and reports the overhead per turn — turn wall time
minus the generation time the ``generate`` node measured — as p50/p95, beside the
generation time itself (the baseline, measured in the same run). The overhead is split
into the part before the first token and the part after the reply, node by node.

    python -m evals.bench.graph --turns 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from evals.stats import median, percentile, table
from graph import telemetry
from graph.runner import ChatMessage, TokenEvent, TurnRequest
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


BEFORE = ("prepare", "load_context", "apply_instructions", "recall", "compose_prompt", "route")
"""Before the first token: accepting the message (``TurnRunner.prepare``) and the pipeline."""
AFTER = ("record",)
"""After the last token: storing, indexing and enqueueing."""


async def run(
    turns: int, threads: int, max_tokens: int, model_cache: Path | None
) -> dict[str, float]:
    """Run the benchmark and return its figures (milliseconds).

    Per turn: the overhead before the first token (request to first token, less the
    model's own time to it), after it (the rest of the overhead), and each node's wall
    time (``graph.telemetry.recording``); ``generate`` counts only its time outside the
    model's generation.
    """
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
            series: dict[str, list[float]] = defaultdict(list)
            for i in tqdm(range(turns), desc="turns", unit="turn"):
                slot = i % threads
                request = TurnRequest(
                    messages=[ChatMessage(role="user", content=PROMPTS[i % len(PROMPTS)])],
                    params=GenerationParams(model="attune", max_tokens=max_tokens, temperature=0),
                    thread_id=thread_ids[slot],
                )
                with telemetry.recording() as nodes:
                    start = time.perf_counter()
                    prepared = await services.runner.prepare(user.id, request)
                    series["prepare"].append((time.perf_counter() - start) * 1000)
                    stream = services.runner.start(prepared)
                    first: float | None = None
                    async for event in stream.events():
                        if first is None and isinstance(event, TokenEvent):
                            first = time.perf_counter()
                    result = await stream.task
                    end = time.perf_counter()
                thread_ids[slot] = result.thread_id
                wall = (end - start) * 1000
                usage = result.usage
                to_token = ((first or end) - start) * 1000 - usage["ttft_ms"]
                overhead = wall - usage["latency_ms"]
                series["total"].append(wall)
                series["generation"].append(usage["latency_ms"])
                series["overhead"].append(overhead)
                series["before_first_token"].append(to_token)
                series["after_first_token"].append(overhead - to_token)
                per_node: dict[str, float] = defaultdict(float)
                for name, seconds in nodes:
                    per_node[name] += seconds * 1000
                per_node["generate"] -= usage["latency_ms"]
                for name, ms in per_node.items():
                    series[f"node:{name}"].append(ms)
    figures = {
        "overhead_p50_ms": percentile(series["overhead"], 50),
        "overhead_p95_ms": percentile(series["overhead"], 95),
        "generation_p50_ms": median(series["generation"]),
        "turn_p50_ms": median(series["total"]),
        "overhead_share": median(series["overhead"]) / median(series["total"]),
    }
    for name in ("before_first_token", "after_first_token", "prepare"):
        figures[f"{name}_p50_ms"] = percentile(series[name], 50)
        figures[f"{name}_p95_ms"] = percentile(series[name], 95)
    for key, values in series.items():
        if key.startswith("node:"):
            figures[f"{key}_p50_ms"] = percentile(values, 50)
            figures[f"{key}_p95_ms"] = percentile(values, 95)
    return figures


def _split(figures: dict[str, float]) -> list[tuple[str, str]]:
    """The table's rows of the before/after split, node by node."""

    def row(label: str, key: str) -> tuple[str, str]:
        p50, p95 = figures.get(f"{key}_p50_ms"), figures.get(f"{key}_p95_ms")
        if p50 is None or p95 is None:
            return label, "-"
        return label, f"{p50:.1f} / {p95:.1f} ms"

    rows = [row("before the first token, p50 / p95", "before_first_token")]
    rows += [row(f"  {n}", n if n == "prepare" else f"node:{n}") for n in BEFORE]
    rows.append(row("  generate (outside the model)", "node:generate"))
    rows.append(row("after the first token, p50 / p95", "after_first_token"))
    rows += [row(f"  {n}", f"node:{n}") for n in AFTER]
    return rows


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
                *_split(figures),
            ]
        )
    )
    print(
        "(before: request to first token less the model's own time to it; after: the "
        "rest of the overhead. Node rows are each node's wall time; what they leave out "
        "is LangGraph's own work and the checkpoint writes.)"
    )


if __name__ == "__main__":
    main()
