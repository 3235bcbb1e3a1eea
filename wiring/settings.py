"""The one settings object, read at process entry points and passed down.

Every field can be set from the environment with the ``ATTUNE_`` prefix, nested groups
with ``__``: ``ATTUNE_DATA_DIR``, ``ATTUNE_DB__URL``, ``ATTUNE_MODEL__BASE_MODEL_DIR``,
``ATTUNE_GRAPH__PROMPT_VERSION``, ``ATTUNE_SERVER__PORT`` and so on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.config import ModelSettings, TrainingSettings
from graph.config import GraphSettings
from memory.config import DatabaseSettings, MemorySettings
from workers.config import WorkerSettings


class ServerSettings(BaseModel):
    """HTTP server and request limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Requests larger than this are refused with 413."""
    max_message_chars: int = Field(default=32_000, ge=1)
    """A single chat message longer than this is refused with 413."""
    max_messages: int = Field(default=256, ge=1)
    """A chat request with more messages than this is refused with 400."""

    # Backpressure (``api.admission``): what the local engine can usefully run, a short
    # queue behind it, and a bound on the wait, so overload answers 503 instead of queueing.
    max_concurrent_turns: int = Field(default=32, ge=1, le=4096)
    """Turns generating at once in this process: the local engine's batch
    (``model.max_batch``), which generates them together; for vLLM, about its batch size
    times the replicas."""
    max_queued: int = Field(
        default=16,
        ge=0,
        le=100_000,
        validation_alias=AliasChoices("max_queued", "max_queued_turns"),
    )
    """Turns waiting for a slot; past this a chat gets 503 with ``Retry-After`` (also read
    as ``MAX_QUEUED_TURNS``)."""
    queue_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        validation_alias=AliasChoices("queue_timeout_s", "queue_wait_s"),
    )
    """A turn that waited this long for a slot gets 503 with ``Retry-After`` (also read as
    ``QUEUE_WAIT_S``)."""
    max_turns_per_user: int = Field(default=2, ge=0, le=4096)
    """Turns one user may have running or queued at once; more get 429 (0: no cap)."""
    rate_limit_rpm: int = Field(default=0, ge=0, le=1_000_000_000)
    """Chat requests per minute per API key, a token bucket (0: unlimited)."""
    rate_limit_tpm: int = Field(default=0, ge=0, le=1_000_000_000_000)
    """Tokens per minute per API key: each request counts its prompt estimate plus its
    ``max_tokens``, up front (0: unlimited)."""
    rate_limit_redis_url: str | None = None
    """Share the rate limits through this Redis (``redis://host:6379/0``) across server
    processes. ``None``: the workers' broker when it is Redis, else in this process."""
    slo_turn_s: float = Field(default=30.0, gt=0.0, le=86_400.0)
    """The turn latency budget (request to last byte) that the load bench reports against."""


class ExperimentSettings(BaseModel):
    """Experiments on live traffic: how fast changes reach turns, and the guard rail."""

    refresh_s: float = Field(default=2.0, ge=0.0, le=3600.0)
    """A process rereads the running experiments at most this often."""
    guard_interval_s: float = Field(default=30.0, ge=0.0, le=86_400.0)
    """The server checks every running experiment's guard rail this often (0: never)."""
    guard_min_turns: int = Field(default=30, ge=1)
    """Finished turns an arm and its control each need before the guard judges them."""
    guard_error_margin: float = Field(default=0.05, ge=0.0, le=1.0)
    """An arm whose error rate exceeds control's by more than this is stopped."""
    guard_latency_margin: float = Field(default=0.5, ge=0.0)
    """An arm whose latency p95 exceeds control's by more than this share is stopped."""
    bootstrap_rounds: int = Field(default=1000, ge=100, le=100_000)
    """Resampling rounds behind the intervals and tests of ``show``."""


class Settings(BaseSettings):
    """Attune's settings. Paths left unset are derived from ``data_dir``."""

    model_config = SettingsConfigDict(
        env_prefix="ATTUNE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path(".attune")
    """Holds the SQLite file, vectors, queue, model cache and adapters by default."""

    admin_key: SecretStr | None = None
    """The admin bearer key. When unset, one is generated on first start, printed once and
    kept (hashed) in the record store."""

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per line, with the request, user, thread and turn ids
    (``api.logs``), for a log pipeline; ``text``: for people."""
    otel_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ATTUNE_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    """An OTLP/gRPC collector (``http://collector:4317``): when set, each turn is traced
    node by node. Also read from the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``."""

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        data = self.data_dir
        if self.db.url is None:
            self.db.url = f"sqlite:///{data / 'attune.db'}"
        if self.model.cache_dir is None:
            self.model.cache_dir = data / "models"
        if self.model.adapters_dir is None:
            self.model.adapters_dir = data / "adapters"
        if self.training.datasets_url is None:
            self.training.datasets_url = str(data / "datasets")
        if self.training.work_dir is None:
            self.training.work_dir = data / "training"
        if self.memory.vector_path is None:
            self.memory.vector_path = str(data / "vectors")
        if self.graph.checkpoint_url is None:
            self.graph.checkpoint_url = _checkpoint_url_for(self.db.url, data)
        return self

    @property
    def database_url(self) -> str:
        """The record store's SQLAlchemy URL (always set after validation)."""
        assert self.db.url is not None
        return self.db.url


def _checkpoint_url_for(db_url: str, data_dir: Path) -> str:
    """Thread state follows the record store: same PostgreSQL database, or a SQLite file."""
    if db_url.startswith("postgresql"):
        _scheme, _, rest = db_url.partition("://")
        return f"postgresql://{rest}"
    return str(data_dir / "checkpoints.db")


def load_settings() -> Settings:
    """Read settings and configure logging and offline mode (process entry point)."""
    # Nothing may wait on a model hub or telemetry endpoint.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    # Idle OpenMP threads must not spin: on 2 busy cores spinning costs 20x in latency.
    # Takes effect only before torch is imported, which is why it is set here.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings
