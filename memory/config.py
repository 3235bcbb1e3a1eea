"""Settings for the record store, passed down from the root settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DatabaseSettings(BaseModel):
    """Where records (users, keys, threads, turns, feedback) live.

    ``url`` left as ``None`` is filled by the root settings with a SQLite file in the data
    directory; any SQLAlchemy URL works (``postgresql+psycopg://user@host/db``).
    """

    url: str | None = None
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)


class MemorySettings(BaseModel):
    """Semantic and episodic memory: vectors, extraction and retrieval weights."""

    vector_url: str | None = None
    """``None``: embedded Chroma in ``<data_dir>/vectors``; ``http://host:port``: a Chroma
    server."""

    vector_path: str | None = None
    """Embedded Chroma's directory (default ``<data_dir>/vectors``)."""

    embed_device: str = "cpu"
    embed_batch_size: int = Field(default=64, ge=1, le=4096)

    extractor: Literal["rules", "llm"] = "rules"
    """``rules`` always works offline; ``llm`` uses an OpenAI-compatible endpoint below and
    falls back to the rules when it fails."""
    extractor_base_url: str | None = None
    extractor_model: str | None = None
    extractor_api_key: str | None = None

    fetch_k: int = Field(default=50, ge=1, le=1000)
    """Candidates each retriever contributes before fusion."""
    dense_weight: float = Field(default=1.0, ge=0)
    # Chosen by the memory eval's sweep (evals/memory_sweep.py) on half the users and
    # checked on the other half: R@10 0.863 vs 0.724 for (1.0, 0.2, rrf_k=60).
    lexical_weight: float = Field(default=0.3, ge=0)
    recency_weight: float = Field(default=0.0, ge=0)
    rrf_k: int = Field(default=10, ge=1)
