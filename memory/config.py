"""Settings for the record store, passed down from the root settings object."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DatabaseSettings(BaseModel):
    """Where records (users, keys, threads, turns, feedback) live.

    ``url`` left as ``None`` is filled by the root settings with a SQLite file in the data
    directory; any SQLAlchemy URL works (``postgresql+psycopg://user@host/db``).
    """

    url: str | None = None
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)
