"""Benchmarks of ``attune serve``: its start time, and chat under concurrent load.

**Start time** (``attune serve`` until ``/healthz`` answers). The baseline, measured in the
same run, is loading the model alone in a fresh process (what any server of this model
must pay), so the ratio shows what Attune adds.

    python -m evals.bench.server --runs 3

**Load** (``--load N``): N users each send one chat at the same moment to a fresh server on
the real local model, replies of ``--tokens`` tokens. It reports the statuses (200, 429,
503), whether every refusal carries ``Retry-After``, the latency percentiles of the
answered turns, the share of turns within the SLO (``ATTUNE_SERVER__SLO_TURN_S`` or
``--slo``), and how fast ``/healthz`` answered during the load. ``--compare`` first runs
the same load with the bounds lifted (every turn queues, as before backpressure), so both
columns come from the same run. Limits come from the environment (``ATTUNE_SERVER__…``).

    python -m evals.bench.server --load 50 --tokens 16 --compare
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from evals.stats import median, percentile, table
from wiring.settings import Settings

ADMIN_KEY = "bench"

_LOAD_ONLY = (
    "from adapters.config import ModelSettings; from adapters.backend import make_backend;"
    "import sys; make_backend(ModelSettings(cache_dir=sys.argv[1]))"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(model_cache: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, float]]:
    """Run ``attune serve`` on a fresh data dir; yield its URL and seconds to ``/healthz``."""
    port = _port()
    with tempfile.TemporaryDirectory() as tmp:
        full_env = {
            **os.environ,
            "ATTUNE_DATA_DIR": tmp,
            "ATTUNE_MODEL__CACHE_DIR": str(model_cache),
            "ATTUNE_ADMIN_KEY": ADMIN_KEY,
            "ATTUNE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("server exited during start")
                try:
                    if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            yield url, time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def time_server_start(model_cache: Path) -> float:
    """Seconds from spawning ``attune serve`` on a fresh data dir to a healthy ``/healthz``."""
    with serving(model_cache) as (_, seconds):
        return seconds


def time_model_load(model_cache: Path) -> float:
    """Seconds for a fresh process to import and load the model, nothing else."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LOAD_ONLY, str(model_cache)], check=True)
    return time.perf_counter() - start


UNBOUNDED = {
    "ATTUNE_SERVER__MAX_CONCURRENT_TURNS": "4096",
    "ATTUNE_SERVER__MAX_QUEUED": "100000",
    "ATTUNE_SERVER__QUEUE_TIMEOUT_S": "3600",
    "ATTUNE_SERVER__MAX_TURNS_PER_USER": "0",
}
"""The server as it was before backpressure: every turn queues, none is refused."""
PROMPT = "Tell me a story about a lighthouse keeper."


@dataclass(frozen=True)
class Outcome:
    """One chat request under load."""

    status: int
    seconds: float
    retry_after: bool


@dataclass(frozen=True)
class LoadRun:
    """What one load run measured."""

    outcomes: list[Outcome]
    wall_s: float
    health_s: list[float]
    """Latency of every ``/healthz`` probe made during the load."""
    unready: int
    """``/readyz`` probes that answered 503 during the load."""
    solo_s: float
    """One turn alone, before the load (it also warms the server up)."""


async def _chat(client: httpx.AsyncClient, key: str, tokens: int) -> Outcome:
    body = {
        "model": "attune",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
    }
    started = time.perf_counter()
    try:
        r = await client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    except httpx.HTTPError:
        return Outcome(0, time.perf_counter() - started, False)  # a timeout or reset
    return Outcome(r.status_code, time.perf_counter() - started, "retry-after" in r.headers)


async def run_load(url: str, concurrency: int, tokens: int) -> LoadRun:
    """``concurrency`` users send one chat each at once; ``/healthz`` is probed meanwhile."""
    limits = httpx.Limits(max_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=url, timeout=900, limits=limits) as client:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        keys = []
        for i in range(concurrency + 1):
            r = await client.post("/v1/users", json={"name": f"bench{i}"}, headers=admin)
            r.raise_for_status()
            keys.append(str(r.json()["api_key"]))
        solo = await _chat(client, keys.pop(), tokens)
        health: list[float] = []
        unready = 0
        done = asyncio.Event()

        async def probe() -> None:
            nonlocal unready
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                health.append(time.perf_counter() - started)
                unready += (await client.get("/readyz")).status_code == 503
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=0.25)

        prober = asyncio.create_task(probe())
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(_chat(client, key, tokens) for key in keys))
        wall = time.perf_counter() - started
        done.set()
        await prober
    return LoadRun(list(outcomes), wall, health, unready, solo.seconds)


def _report(run: LoadRun, slo_s: float) -> dict[str, str]:
    """The figures of one run, by row label."""
    n = len(run.outcomes)
    ok = [o.seconds for o in run.outcomes if o.status == 200]
    refused = [o for o in run.outcomes if o.status in (429, 503)]
    other = n - len(ok) - len(refused)
    within = sum(s <= slo_s for s in ok)

    def pct(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.1f} s" if values else "-"

    return {
        "one turn alone, warm": f"{run.solo_s:.1f} s",
        "requests": str(n),
        "200 / 429 / 503 / other": (
            f"{len(ok)} / {sum(o.status == 429 for o in refused)} / "
            f"{sum(o.status == 503 for o in refused)} / {other}"
        ),
        "refusals with Retry-After": f"{sum(o.retry_after for o in refused)}/{len(refused)}",
        "answered turns: p50 / p95 / max": (
            f"{pct(ok, 50)} / {pct(ok, 95)} / {max(ok):.1f} s" if ok else "-"
        ),
        "refusals: p95 time to answer": pct([o.seconds for o in refused], 95),
        f"answered turns within SLO ({slo_s:g} s)": (
            f"{within}/{len(ok)} ({within / len(ok):.0%})" if ok else "-"
        ),
        "all requests answered within SLO": f"{within}/{n} ({within / n:.0%})",
        "wall time": f"{run.wall_s:.1f} s",
        "/healthz during load: p95 / max": (
            f"{percentile(run.health_s, 95) * 1000:.0f} / {max(run.health_s) * 1000:.0f} ms"
            if run.health_s
            else "-"
        ),
        "/readyz probes answering 503": str(run.unready),
    }


def bench_load(
    model_cache: Path, concurrency: int, tokens: int, slo_s: float, compare: bool
) -> None:
    """Run the load (after an unbounded run, with ``compare``) and print the figures."""
    profiles = [("unbounded (before)", UNBOUNDED)] if compare else []
    profiles.append(("configured limits", {}))
    columns: list[tuple[str, dict[str, str]]] = []
    for name, env in profiles:
        with serving(model_cache, env) as (url, _):
            run = asyncio.run(run_load(url, concurrency, tokens))
        columns.append((name, _report(run, slo_s)))
    print(f"\n{concurrency} concurrent chats, one per user, replies of {tokens} tokens:")
    labels = list(columns[0][1])
    width = max(len(label) for label in labels)
    widths = [max(len(name), *(len(v) for v in col.values())) for name, col in columns]
    print(
        "  "
        + " " * width
        + "".join(f"  {n.ljust(w)}" for (n, _), w in zip(columns, widths, strict=True))
    )
    for label in labels:
        cells = "".join(
            f"  {col[label].ljust(w)}" for (_, col), w in zip(columns, widths, strict=True)
        )
        print(f"  {label.ljust(width)}{cells}")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="starts to time (default 3)")
    parser.add_argument("--model-cache", type=Path, default=Path(".attune/models"))
    parser.add_argument("--load", type=int, default=0, help="concurrent chats (0: start time)")
    parser.add_argument("--tokens", type=int, default=16, help="reply tokens under load")
    parser.add_argument("--slo", type=float, help="turn budget, s (default: the setting)")
    parser.add_argument("--compare", action="store_true", help="also run without bounds")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.load:
        slo_s = args.slo if args.slo is not None else Settings().server.slo_turn_s
        bench_load(args.model_cache, args.load, args.tokens, slo_s, args.compare)
        return
    starts, loads = [], []
    for _ in tqdm(range(args.runs), desc="server starts", unit="start"):
        loads.append(time_model_load(args.model_cache))
        starts.append(time_server_start(args.model_cache))
    print(f"\nServer start over {args.runs} runs (fresh data dir, model already converted):")
    print(
        table(
            [
                ("attune serve → /healthz, median", f"{median(starts):.2f} s"),
                ("model load alone (baseline), median", f"{median(loads):.2f} s"),
                ("ratio", f"{median(starts) / median(loads):.2f}x"),
            ]
        )
    )


if __name__ == "__main__":
    main()
