"""Serving throughput through vLLM: the base model vs requests that each name an adapter.

``attune bench serving`` (or ``python -m evals.bench.serving``) starts one vLLM server from
its cached venv (or uses ``--url``), publishes N random rank-8 LoRA adapters through the
``vllm`` backend (loads verified, as promotion does), then measures, in the same run:

* throughput (completion tokens/s) of the base model and of requests that each name the
  next of N distinct adapters, at 1, 8 and 32 concurrent streams, and their ratio;
* realistic traffic: the adapters one replica is asked for, in order, when a Zipf
  population is routed by affinity (``evals.bench.placement.replica_slice``: most requests
  on group adapters, the most active users on their own), each distinct adapter of the
  slice mapped to one of the published ones, as a ratio to base at each stream count;
* publication: time to publish (load + verify) and the time to the first streamed token of
  the first request to a freshly published adapter, vs the base model's, p50/p95.

Every request forces its length (``ignore_eos``), so each cell generates the same tokens.
The placement simulation at scale (Zipf users, group adapters) is ``attune bench placement``
(``evals/bench/placement.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai
import torch
from openai.types.chat import ChatCompletionMessageParam
from safetensors.torch import load_file, save_file

from adapters.config import ModelSettings
from adapters.model_store import resolve_model_dir
from adapters.vllm_backend import VllmBackend
from adapters.vllm_server import ensure_venv, server_command, start, stop, venv_dir, wait_ready
from evals.bench.loras import random_lora
from evals.bench.placement import Population, replica_slice
from wiring.settings import load_settings

PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me a long story about a lighthouse keeper."}
]


def make_adapters(model_dir: Path, root: Path, count: int) -> list[Path]:
    """``count`` random rank-8 adapters: one made with peft, the rest with re-drawn weights."""
    first = random_lora(model_dir, root / "bench-0", seed=0)
    weights = load_file(str(first / "adapter_model.safetensors"))
    paths = [first]
    for i in range(1, count):
        target = root / f"bench-{i}"
        target.mkdir()
        shutil.copy(first / "adapter_config.json", target / "adapter_config.json")
        gen = torch.Generator().manual_seed(i)
        drawn = {k: torch.randn(v.shape, generator=gen) * v.std() for k, v in weights.items()}
        save_file(drawn, str(target / "adapter_model.safetensors"))
        paths.append(target)
    return paths


async def _one(client: openai.AsyncOpenAI, model: str, tokens: int) -> int:
    reply = await client.chat.completions.create(
        model=model,
        messages=PROMPT,
        max_tokens=tokens,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    return reply.usage.completion_tokens if reply.usage else 0


async def throughput(
    client: openai.AsyncOpenAI, models: Sequence[str], *, streams: int, per_stream: int, tokens: int
) -> float:
    """Completion tokens/s of ``streams`` concurrent loops; request i names ``models[i % n]``."""
    counter = iter(range(streams * per_stream))

    async def loop() -> int:
        done = 0
        for i in counter:
            done += await _one(client, models[i % len(models)], tokens)
        return done

    started = time.perf_counter()
    total = sum(await asyncio.gather(*(loop() for _ in range(streams))))
    return total / (time.perf_counter() - started)


async def first_token_s(client: openai.AsyncOpenAI, model: str) -> float:
    """Seconds to the first streamed token of one request naming ``model``."""
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model,
        messages=PROMPT,
        max_tokens=4,
        temperature=0,
        stream=True,
    )
    elapsed = 0.0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and not elapsed:
            elapsed = time.perf_counter() - started
    return elapsed


def quantiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of ``seconds``, in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(1000 * statistics.median(ordered), 1), "p95": round(1000 * p95, 1)}


def realistic_names(ids: Sequence[int], names: Sequence[str]) -> list[str]:
    """Each adapter id of a simulated slice as a published adapter, by first appearance.

    The ``k``-th distinct id becomes ``names[k % len(names)]``: a slice with more distinct
    adapters than were published reuses names, so it is no harder than the real one.
    """
    order: dict[int, int] = {}
    for i in ids:
        order.setdefault(i, len(order))
    return [names[order[i] % len(names)] for i in ids]


async def run(args: argparse.Namespace, url: str, model_dir: Path, work: Path) -> dict[str, Any]:
    """Publish the adapters on the server at ``url`` and measure; returns the report."""
    settings = ModelSettings(backend="vllm", vllm_urls=url, base_model_dir=model_dir)
    backend = VllmBackend.from_settings(settings)
    base = backend.replicas[0].base_model()
    most = max(args.adapters)
    paths = make_adapters(model_dir, work, most + args.cold)
    publish_s = []
    for path in paths[:most]:
        started = time.perf_counter()
        backend.publish(path.name, path)
        publish_s.append(time.perf_counter() - started)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="EMPTY", timeout=600)
    await throughput(client, [base], streams=2, per_stream=1, tokens=8)  # warm-up
    rows: list[dict[str, Any]] = []
    pop = Population()
    ids = replica_slice(pop, replicas=args.realistic_replicas, requests=args.requests)
    realistic = realistic_names(ids, [p.name for p in paths[:most]]) if ids else []
    batches = [ids[i : i + 32] for i in range(0, len(ids), 32)]
    traffic = {
        "population": vars(pop),
        "replicas": args.realistic_replicas,
        "requests": len(ids),
        "distinct_adapters": len(set(ids)),
        "distinct_after_mapping": len(set(realistic)),
        "distinct_per_32_requests": round(
            sum(len(set(b)) for b in batches) / max(len(batches), 1), 1
        ),
        "own_adapter_share": round(
            sum(i < int(pop.users * pop.own_share) for i in ids) / max(len(ids), 1), 3
        ),
    }
    for streams in args.streams:
        per = max(1, args.requests // streams)
        kw = {"streams": streams, "per_stream": per, "tokens": args.tokens}
        base_tps = await throughput(client, [base], **kw)
        row: dict[str, Any] = {"streams": streams, "base_tok_s": round(base_tps, 1)}
        for n in args.adapters:
            names = [p.name for p in paths[:n]]
            tps = await throughput(client, names, **kw)
            row[f"{n}_adapters_tok_s"] = round(tps, 1)
            row[f"{n}_adapters_ratio"] = round(tps / base_tps, 2)
        if realistic:
            tps = await throughput(client, realistic, **kw)
            row["realistic_tok_s"] = round(tps, 1)
            row["realistic_ratio"] = round(tps / base_tps, 2)
        rows.append(row)
    cold, warm, promote = [], [], []
    for path in paths[most:]:
        started = time.perf_counter()
        backend.publish(path.name, path)
        ttft = await first_token_s(client, path.name)
        promote.append(time.perf_counter() - started)
        cold.append(ttft)
        warm.append(await first_token_s(client, base))
    extra = [c - w for c, w in zip(cold, warm, strict=True)]
    return {
        "url": url,
        "tokens_per_request": args.tokens,
        "throughput": rows,
        "realistic_traffic": traffic,
        "publish_ms": quantiles_ms(publish_s),
        "promote_to_first_token_ms": quantiles_ms(promote),
        "cold_extra_ttft_ms": quantiles_ms(extra),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, start a server unless ``--url`` names one, print the figures."""
    parser = argparse.ArgumentParser(prog="attune bench serving", description=__doc__)
    parser.add_argument("--url", help="an existing vLLM server on the base model, LoRA enabled")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--adapters", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--tokens", type=int, default=64, help="completion tokens per request")
    parser.add_argument(
        "--requests", type=int, default=32, help="requests per cell (at least one per stream)"
    )
    parser.add_argument(
        "--realistic-replicas",
        type=int,
        default=32,
        help="replicas the simulated population is spread over (the realistic cell)",
    )
    parser.add_argument("--cold", type=int, default=10, help="cold publications timed")
    parser.add_argument("--port", type=int, default=8791, help="where a started server listens")
    args = parser.parse_args(argv)
    settings = load_settings().model.model_copy(
        update=dict(
            vllm_max_loras=max(args.adapters),
            vllm_max_cpu_loras=max(args.adapters) + args.cold,
            vllm_max_lora_rank=8,
        )
    )
    model_dir = resolve_model_dir(settings)
    process = None
    url = args.url
    if url is None:
        python = ensure_venv(venv_dir(settings))
        port = args.port
        command = server_command(python, model_dir, settings, host="127.0.0.1", port=port)
        log_path = Path(tempfile.gettempdir()) / "attune-bench-vllm.log"
        print(f"starting vLLM on port {port} (log: {log_path})", file=sys.stderr)
        process = start(command, log_path=log_path)
        url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        with tempfile.TemporaryDirectory() as work:
            report = asyncio.run(run(args, url, model_dir, Path(work)))
    finally:
        if process is not None:
            stop(process)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
