"""Typed state of the per-turn graph.

Only plain data lives here (strings, dicts, LangChain messages) so the checkpointer can
store it. ``messages`` is the thread's history, kept by the checkpointer across turns; the
other fields describe the current turn and are rewritten by each run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class GenerationParams(TypedDict, total=False):
    """Sampling parameters of the request (OpenAI names)."""

    model: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] | None
    seed: int | None
    response_format: dict[str, Any] | None
    """OpenAI's, when it asks for structured output (``json_object``, ``json_schema``)."""
    sent: list[str]
    """The sampling fields the client set itself: an experiment's arm never overrides them."""


class MemoryItem(TypedDict):
    """A memory offered to the prompt."""

    id: str
    kind: str
    role: str
    text: str
    date: str
    score: float


RouteKind = Literal["user", "group", "base"]


class Route(TypedDict):
    """Which model target serves the turn, and why."""

    kind: RouteKind
    adapter: str | None
    target: str
    """``base``, ``user:<adapter>`` or ``group:<adapter>`` — recorded on the turn."""
    reason: str


class Usage(TypedDict):
    """What generating the reply cost."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    ttft_ms: float
    latency_ms: float


class Regeneration(TypedDict):
    """Another reply to a recorded prompt, as it was sent (``graph.regenerate``)."""

    original_id: str
    """The assistant turn to give an alternative to."""
    target: str | None
    """The model target that generated it; reused while still available."""
    prompt_version: str
    prompt: list[dict[str, str]]
    """The stored prompt of the original: exactly the messages that were sent."""


@dataclass(kw_only=True)
class InputState:
    """What a caller passes to run one turn."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The new user message (preceded, for a new thread, by history the client sent)."""
    params: GenerationParams = field(default_factory=lambda: GenerationParams())
    client_system: str | None = None
    """System text the client sent; shown to the model after Attune's own prompt."""
    user_turn_id: str = ""
    assistant_turn_id: str = ""
    received_at: str = ""
    """ISO time the request arrived; the user turn's timestamp."""
    regenerate: Regeneration | None = None
    """Set: regenerate a recorded reply instead of answering a new message (the graph
    skips from its start to ``generate``; ``user_turn_id`` names the turn it answers)."""


@dataclass(kw_only=True)
class TurnState(InputState):
    """The full state of a turn."""

    profile: dict[str, Any] = field(default_factory=dict)
    profile_version: int = 0
    learned: str | None = None
    """The user's active learned instruction block (procedural memory), if any."""
    adapter: str | None = None
    group_adapter: str | None = None
    profile_updates: list[dict[str, Any]] = field(default_factory=list)
    memories: list[MemoryItem] = field(default_factory=list)
    prompt_version: str = ""
    system_prompt: str = ""
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    """Exactly what is sent to the model: system prompt, then history within budget."""
    prompt_tokens_estimate: int = 0
    route: Route | None = None
    degraded: list[str] = field(default_factory=list)
    """What recall ranked without this turn (``["dense"]`` while the vector index is down)."""
    experiments: list[dict[str, Any]] = field(default_factory=list)
    """The user's arms in live experiments this turn (``graph.experiments.Assignment``)."""
    arm: dict[str, Any] = field(default_factory=dict)
    """What those arms change (``graph.experiments.ArmSettings``, unset fields left out)."""
    scratch: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """This turn's tool calls and results; cleared at the start of every turn."""
    tool_rounds: int = 0
    reply: str = ""
    usage: Usage | None = None
