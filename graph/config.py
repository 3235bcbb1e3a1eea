"""Settings for the per-turn graph, passed down from the root settings object."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GraphSettings(BaseModel):
    """Prompt versions, budgets and thread-state storage for the per-turn graph."""

    prompt_version: str = "v4"
    """Active version of ``graph/prompts/system/``; recorded on every turn."""

    checkpoint_url: str | None = None
    """LangGraph checkpointer: ``None`` follows the record store (SQLite file beside it, or
    the same PostgreSQL database); a ``postgresql://`` URL or a SQLite path overrides it."""

    recall_k: int = Field(default=4, ge=0, le=50)
    """Earlier turns offered to the prompt by ``recall``."""

    memory_token_budget: int = Field(default=384, ge=0)
    """Tokens the recalled memories may take in the system prompt."""

    known_token_budget: int = Field(default=900, ge=0)
    """Tokens the user's own facts and preferences (the ``known`` block) may take, most
    relevant to the message first, then the newest."""

    profile_token_budget: int = Field(default=150, ge=0)
    """Tokens the profile's style hints and interests may take (directives and standing
    instructions are never cut and do not count against it)."""

    history_token_budget: int = Field(default=1536, ge=64)
    """Tokens the thread history may take; older messages are dropped first."""

    context_window: int = Field(default=8192, ge=512)
    """The model's context length; prompt + reply must fit."""
