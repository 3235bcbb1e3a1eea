"""Benchmark: server start time (``attune serve`` until ``/healthz`` answers).

The baseline, measured in the same run, is loading the model alone in a fresh process
(what any server of this model must pay), so the ratio shows what Attune adds.

    python -m evals.bench_server --runs 3
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from evals.stats import median, table

_LOAD_ONLY = (
    "from adapters.config import ModelSettings; from adapters.backend import make_backend;"
    "import sys; make_backend(ModelSettings(cache_dir=sys.argv[1]))"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_server_start(model_cache: Path) -> float:
    """Seconds from spawning ``attune serve`` on a fresh data dir to a healthy ``/healthz``."""
    port = _port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ATTUNE_DATA_DIR": tmp,
            "ATTUNE_MODEL__CACHE_DIR": str(model_cache),
            "ATTUNE_ADMIN_KEY": "bench",
            "ATTUNE_LOG_LEVEL": "WARNING",
        }
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("server exited during start")
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code
                        == 200
                    ):
                        return time.perf_counter() - start
                except httpx.HTTPError:
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def time_model_load(model_cache: Path) -> float:
    """Seconds for a fresh process to import and load the model, nothing else."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LOAD_ONLY, str(model_cache)], check=True)
    return time.perf_counter() - start


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="starts to time (default 3)")
    parser.add_argument("--model-cache", type=Path, default=Path(".attune/models"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
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
