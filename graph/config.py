"""Settings for the per-turn graph, passed down from the root settings object."""

from __future__ import annotations

from pydantic import BaseModel, Field

DEFAULT_PROMPT_VERSIONS: dict[str, str] = {
    "extraction": "v2",
    "summary": "v1",
    "instruction_detect": "v1",
    "procedural_critique": "v1",
    "procedural_rewrite": "v1",
}
"""The version of each prompt besides ``system`` that runs unless a setting says otherwise."""


class GraphSettings(BaseModel):
    """Prompt versions, budgets and thread-state storage for the per-turn graph."""

    prompt_version: str = "v4"
    """Active version of ``graph/prompts/system/``; recorded on every turn."""

    prompt_versions: dict[str, str] = Field(default_factory=dict)
    """Active versions of the other prompts, by name, over ``DEFAULT_PROMPT_VERSIONS``
    (``ATTUNE_GRAPH__PROMPT_VERSIONS='{"extraction": "v1"}'``); ``system`` here overrides
    ``prompt_version``. Checked against ``graph/prompts/`` when the services start."""

    def version_of(self, name: str) -> str:
        """The active version of prompt ``name``."""
        if name in self.prompt_versions:
            return self.prompt_versions[name]
        if name == "system":
            return self.prompt_version
        return DEFAULT_PROMPT_VERSIONS[name]

    def active_versions(self) -> dict[str, str]:
        """Every prompt the code uses and its active version."""
        names = dict.fromkeys(["system", *DEFAULT_PROMPT_VERSIONS, *self.prompt_versions])
        return {name: self.version_of(name) for name in names}

    interrupted_after_s: float = Field(default=600.0, gt=0.0)
    """At start, a user message stored this long ago without a reply is marked
    ``interrupted`` (its server stopped mid-reply; a failure marks it at once)."""

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
