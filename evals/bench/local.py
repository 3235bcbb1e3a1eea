"""Benchmark the local backend: load time, time to first token and tokens per second.

Each figure is the median of ``runs`` greedy generations of the same short reply, on
three paths measured in the same process so the wrappers' overhead reads as a ratio:

* ``plain generate``: ``model.generate`` on the loaded model, no streaming, no wrapper
  (its time to first token is a ``max_new_tokens=1`` call: prefill and one token);
* ``engine.stream``: the engine's decode loop, streaming;
* ``LocalChatModel.stream``: the LangChain chat model over the engine, as the graph uses it.

The paths take turns, run after run, so a busy neighbour slows each alike. Then
``evals.bench.batching`` measures aggregate tokens per second with 1, 8 and 32 streams at
once, batched against one request at a time (``--streams``).

Run with ``python -m evals.bench.local`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from langchain_core.messages import HumanMessage
from transformers import GenerationMixin

from adapters.engine import LocalEngine
from adapters.local import LocalChatModel
from adapters.model_store import ensure_base_model
from evals.bench import batching as bench_batching

PROMPT = "Write one sentence about the sea."
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".attune" / "models"


def _time_stream(pieces: Iterable[str]) -> tuple[float, float]:
    """Consume a stream of text pieces; return (time to first text, total time)."""
    started = time.perf_counter()
    first = float("nan")
    for piece in pieces:
        if piece and first != first:  # NaN until the first text
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


def _medians(samples: list[tuple[float, float, int]]) -> dict[str, float]:
    """Medians of (ttft, total seconds, tokens) samples, and the tokens per second."""
    ttft = statistics.median(s[0] for s in samples)
    total = statistics.median(s[1] for s in samples)
    tokens = statistics.median(s[2] for s in samples)
    return {"ttft_s": ttft, "total_s": total, "tokens": tokens, "tokens_per_s": tokens / total}


def run(model_dir: Path, *, runs: int = 5, max_tokens: int = 32) -> dict[str, Any]:
    """Measure the local backend on ``model_dir``.

    Args:
        model_dir: A converted model directory (e.g. from :func:`ensure_base_model`).
        runs: Measured generations per path (after one warm-up).
        max_tokens: Tokens per reply.

    Returns:
        ``load_s``, ``torch_threads``, ``max_tokens`` and, per path (``plain``,
        ``engine``, ``chat_model``), ``ttft_s``, ``total_s``, ``tokens`` and
        ``tokens_per_s``; plus ``chat_model_vs_plain`` and ``engine_vs_plain``, the
        tokens-per-second ratios.
    """
    started = time.perf_counter()
    engine = LocalEngine.load(model_dir, adapters_dir=None, max_concurrency=1)
    load_s = time.perf_counter() - started

    messages = [{"role": "user", "content": PROMPT}]
    prompt = torch.tensor([engine.encode_chat(messages)])  # (1, prompt)
    eos = engine.tokenizer.eos_token_id
    model = engine.model
    assert isinstance(model, GenerationMixin)

    def generate_plain(new_tokens: int) -> int:
        with torch.inference_mode():
            out = model.generate(
                prompt, max_new_tokens=new_tokens, do_sample=False, pad_token_id=eos
            )
        assert isinstance(out, torch.Tensor)
        return int(out.shape[1] - prompt.shape[1])

    def plain() -> tuple[float, float, int]:
        t0 = time.perf_counter()
        generate_plain(1)
        ttft = time.perf_counter() - t0
        t0 = time.perf_counter()
        tokens = generate_plain(max_tokens)
        return ttft, time.perf_counter() - t0, tokens

    def engine_stream() -> tuple[float, float, int]:
        tokens = 0

        def pieces() -> Iterable[str]:
            nonlocal tokens
            for chunk in engine.stream(messages, max_new_tokens=max_tokens, temperature=0):
                if chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
                yield chunk.text

        ttft, total = _time_stream(pieces())
        return ttft, total, tokens

    chat = LocalChatModel(engine=engine, max_tokens=max_tokens, temperature=0)

    def chat_stream() -> tuple[float, float, int]:
        tokens = 0

        def pieces() -> Iterable[str]:
            nonlocal tokens
            for chunk in chat.stream([HumanMessage(PROMPT)]):
                if chunk.usage_metadata is not None:
                    tokens = chunk.usage_metadata["output_tokens"]
                yield str(chunk.content)

        ttft, total = _time_stream(pieces())
        return ttft, total, tokens

    paths = {"plain": plain, "engine": engine_stream, "chat_model": chat_stream}
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in paths}
    for once in paths.values():
        once()  # warm-up: first calls pay for allocator and kernel set-up
    # Round-robin, so a busy neighbour on a shared machine slows every path alike.
    for _ in range(runs):
        for name, once in paths.items():
            samples[name].append(once())
    results: dict[str, Any] = {
        "load_s": load_s,
        "torch_threads": torch.get_num_threads(),
        "max_tokens": max_tokens,
        **{name: _medians(taken) for name, taken in samples.items()},
    }
    for path in ("engine", "chat_model"):
        results[f"{path}_vs_plain"] = (
            results[path]["tokens_per_s"] / results["plain"]["tokens_per_s"]
        )
    return results


def format_table(results: dict[str, Any]) -> str:
    """Render :func:`run`'s results as a small text table."""
    lines = [
        f"model load (cached dir): {results['load_s']:.2f} s   "
        f"torch threads: {results['torch_threads']}   reply: {results['max_tokens']} tokens max",
        "",
        f"{'path':<24}{'TTFT ms':>10}{'total s':>10}{'tokens':>8}{'tok/s':>8}{'vs plain':>10}",
    ]
    names = {"plain": "plain generate", "engine": "engine.stream", "chat_model": "LocalChatModel"}
    for key, label in names.items():
        row = results[key]
        ratio = 1.0 if key == "plain" else results[f"{key}_vs_plain"]
        lines.append(
            f"{label:<24}{row['ttft_s'] * 1000:>10.0f}{row['total_s']:>10.2f}"
            f"{row['tokens']:>8.0f}{row['tokens_per_s']:>8.1f}{ratio:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, convert the default model if needed, run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, help="a model directory (default: SmolLM2)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    parser.add_argument(
        "--streams",
        default="1,8,32",
        help="concurrent stream counts for the batching table (evals.bench.batching); "
        "empty to skip it",
    )
    parser.add_argument("--stream-tokens", type=int, default=128, help="tokens per stream")
    parser.add_argument("--stream-runs", type=int, default=1, help="rounds per stream count")
    parser.add_argument("--max-batch", type=int, default=32, help="the batched engine's")
    args = parser.parse_args(argv)
    # An entry point: never wait on a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model_dir or ensure_base_model(args.cache_dir)
    print(format_table(run(model_dir, runs=args.runs, max_tokens=args.max_tokens)))
    streams = [int(count) for count in args.streams.split(",") if count.strip()]
    if streams:
        batching = bench_batching.run(
            model_dir,
            streams=streams,
            max_tokens=args.stream_tokens,
            runs=args.stream_runs,
            max_batch=args.max_batch,
        )
        print()
        print(bench_batching.format_table(batching))


if __name__ == "__main__":
    main()
