"""The nodes of the per-turn graph.

Each is thin: I/O through services, decisions in plain functions (``memory.persona.instructions``,
``graph.compose``, ``graph.routing``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from datetime import datetime
from functools import partial
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from langchain_core.runnables import Runnable
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

from graph.compose import compose
from graph.context import TurnContext
from graph.conversation import conversation_hash
from graph.experiments import (
    ArmSettings,
    Assignment,
    adapters_for,
    generation_params,
    graph_settings,
    merged,
)
from graph.regenerate import thread_update
from graph.routing import AUTO_MODEL, choose_route
from graph.state import MemoryItem, TurnState, Usage
from memory.persona.document import apply_updates
from memory.persona.forget import forget
from memory.persona.instructions import detect_instructions
from memory.persona.known import known_about, merge_known
from memory.persona.revoked import contradicts, revoked_spans
from memory.records.tables import Turn
from memory.retrieval.dense_health import degraded
from tools.memory import MEMORY_TOOLS

MAX_TOOL_ROUNDS = 3

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def role_of(message: BaseMessage) -> str:
    """OpenAI role name of a LangChain message."""
    return _ROLES.get(message.type, message.type)


def text_of(message: BaseMessage) -> str:
    """The plain text of a message."""
    return message.content if isinstance(message.content, str) else message.text


def storable(text: str) -> str:
    """Model output as every store keeps it: PostgreSQL text holds no NUL character."""
    return text.replace("\x00", "\ufffd")


def _new_message(state: TurnState) -> str:
    if not state.messages or not isinstance(state.messages[-1], HumanMessage):
        raise ValueError("a turn must end with a user message")
    return text_of(state.messages[-1])


async def load_context(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Load the user's profile and adapter pointers, and apply their experiments' arms.

    An arm's generation settings fill in only what the client did not send; its recall,
    budget and prompt-version settings apply in ``recall`` and ``compose_prompt``.
    """
    ctx = runtime.context
    user = await ctx.services.store.load_user(ctx.user_id)
    assigned: list[Assignment] = []
    if ctx.services.experiments is not None:  # the exposure is written by ``record``
        assigned = await ctx.services.experiments.assign(ctx.user_id, user.group_id)
    arm = merged(assigned)
    adapter, group_adapter = adapters_for(
        arm,
        user_id=ctx.user_id,
        group_id=user.group_id,
        adapter=user.adapter,
        group_adapter=user.group_adapter,
    )
    return {
        "experiments": assigned,
        "arm": arm.model_dump(exclude_none=True),
        "params": generation_params(state.params, arm, state.params.get("sent", [])),
        "scratch": [RemoveMessage(id=REMOVE_ALL_MESSAGES)],
        "tool_rounds": 0,
        "reply": "",
        "usage": None,
        "profile": user.profile,
        "profile_version": user.profile_version,
        "learned": user.learned,
        "adapter": adapter,
        "group_adapter": group_adapter,
    }


async def apply_instructions(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Apply explicit instructions in the new message to the profile, now.

    "Forget that I …" deletes the memories that say so before ``recall`` runs. A dry run
    (prompt preview) shows the effect without storing it.
    """
    ctx = runtime.context
    text = _new_message(state)
    detect = ctx.services.detect
    updates = await detect(text) if detect is not None else detect_instructions(text)
    if not updates:
        return {"profile_updates": []}
    applied = [asdict(u) for u in updates]
    if ctx.dry_run or ctx.temporary:
        profile, version = apply_updates(state.profile, updates), state.profile_version
        return {"profile": profile, "profile_version": version, "profile_updates": applied}
    for update, shown in zip(updates, applied, strict=True):
        if update.op == "forget" and isinstance(update.value, str):
            shown["forgotten"] = await asyncio.to_thread(
                forget, ctx.services.memory, ctx.user_id, update.value
            )
    profile, version = await ctx.services.store.save_profile_updates(
        ctx.user_id, updates, source_turn_id=state.user_turn_id or None
    )
    if any(u.op in ("unset", "remove") for u in updates):
        await ctx.services.store.retire_revoked(ctx.user_id, updates, before=state.profile)
    return {"profile": profile, "profile_version": version, "profile_updates": applied}


async def recall(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Search the user's memories for the new message (hybrid: dense, lexical, recency).

    The current thread's turns are left out: they are in the history already; so are
    turns that gave instructions, which the profile holds.
    """
    ctx = runtime.context
    if ctx.temporary:  # a temporary chat reads no memory
        return {"memories": [], "degraded": []}
    spans = await ctx.services.store.run(  # withdrawn names and voices stay out of the prompt
        partial(revoked_spans, user_id=ctx.user_id, current=state.profile)
    )
    found = await asyncio.to_thread(
        ctx.services.memory.search,
        ctx.user_id,
        _new_message(state),
        k=graph_settings(ctx.services.settings, ArmSettings(**state.arm)).recall_k,
        exclude_thread_id=ctx.thread_id,
    )
    without = list(degraded(found))  # e.g. ["dense"]: the vector index did not answer
    query = _new_message(state)
    known = await asyncio.to_thread(known_about, ctx.services.memory, ctx.user_id, query)
    merged = merge_known(found, known)  # stated preferences matter beyond what search finds
    memories = [
        MemoryItem(
            id=m.id,
            kind=m.kind,
            role=m.speaker or "user",
            text=m.text,
            date=m.valid_from.date().isoformat(),
            score=m.score or 0.0,
        )
        for m in merged
        # Instructions live in the profile (which may have revoked them since): an
        # instruction memory, or an old turn that gave one, would only contradict it.
        if m.kind != "instruction"
        and not (m.kind == "episodic" and detect_instructions(m.text))
        and not contradicts(m.text, m.speaker, m.valid_from, spans)
    ]
    return {"memories": memories, "degraded": without}


async def compose_prompt(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Render the system prompt and fit memories and history into their budgets."""
    services = runtime.context.services
    settings = graph_settings(services.settings, ArmSettings(**state.arm))
    history = [
        {"role": role_of(m), "content": text_of(m)}
        for m in state.messages
        if not isinstance(m, SystemMessage)
    ]
    composed = compose(
        prompts=services.prompts,
        version=settings.version_of("system"),
        today=services.clock(),
        profile=state.profile,
        memories=state.memories,
        history=history,
        client_system=state.client_system,
        count_tokens=services.backend.count_tokens,
        memory_budget=settings.memory_token_budget,
        known_budget=settings.known_token_budget,
        profile_budget=settings.profile_token_budget,
        learned=state.learned,
        history_budget=settings.history_token_budget,
        context_window=settings.context_window,
        max_tokens=state.params.get("max_tokens", 256),
    )
    return {
        "prompt_version": settings.version_of("system"),
        "system_prompt": composed.system_prompt,
        "prompt_messages": composed.messages,
        "memories": composed.memories,
        "prompt_tokens_estimate": composed.prompt_tokens,
    }


async def route(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Choose the user's adapter, their group's, or the base model."""
    backend = runtime.context.services.backend
    # In a thread: a remote backend's availability check is an HTTP call (or a load).
    chosen = await asyncio.to_thread(
        choose_route,
        requested_model=state.params.get("model", AUTO_MODEL),
        user_adapter=state.adapter,
        group_adapter=state.group_adapter,
        is_available=backend.has_adapter,
    )
    return {"route": chosen}


def to_langchain(messages: list[dict[str, str]]) -> list[BaseMessage]:
    """LangChain messages for OpenAI-style ``role``/``content`` dicts."""
    kinds: dict[str, type[BaseMessage]] = {
        "system": SystemMessage,
        "user": HumanMessage,
        "assistant": AIMessage,
    }
    return [kinds[m["role"]](content=m["content"]) for m in messages]


async def generate(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Generate the reply, streaming each piece to the run's stream writer.

    Backends that support tools get the memory tools; a reply that calls them goes to the
    ``tools`` node and comes back here with the results (at most ``MAX_TOOL_ROUNDS``).
    """
    assert state.route is not None
    params = state.params
    backend = runtime.context.services.backend
    model: Runnable[Any, Any] = backend.chat_model(
        adapter=state.route["adapter"],
        max_tokens=params.get("max_tokens", 256),
        temperature=params.get("temperature", 0.7),
        top_p=params.get("top_p", 1.0),
        stop=params.get("stop"),
        seed=params.get("seed"),
        response_format=params.get("response_format"),
    )
    may_call_tools = backend.supports_tools and state.tool_rounds < MAX_TOOL_ROUNDS
    if may_call_tools:
        model = model.bind_tools(MEMORY_TOOLS)  # type: ignore[attr-defined]
    start = time.perf_counter()
    first: float | None = None
    message: BaseMessageChunk | None = None
    async for chunk in model.astream([*to_langchain(state.prompt_messages), *state.scratch]):
        message = chunk if message is None else message + chunk
        if chunk.text:
            if first is None:
                first = time.perf_counter()
            runtime.stream_writer({"type": "token", "text": storable(chunk.text)})
    end = time.perf_counter()
    tool_calls = getattr(message, "tool_calls", None) if message is not None else None
    if may_call_tools and tool_calls:
        assert message is not None
        return {
            "scratch": [AIMessage(content=message.text, tool_calls=tool_calls)],
            "tool_rounds": state.tool_rounds + 1,
        }
    usage_meta = dict(getattr(message, "usage_metadata", None) or {})
    finish_reason = (message.response_metadata.get("finish_reason") if message else None) or "stop"
    reply = storable(message.text) if message is not None else ""
    usage = Usage(
        prompt_tokens=int(usage_meta.get("input_tokens", state.prompt_tokens_estimate)),
        completion_tokens=int(usage_meta.get("output_tokens", 0)),
        finish_reason=finish_reason,
        ttft_ms=round(((first or end) - start) * 1000, 2),
        latency_ms=round((end - start) * 1000, 2),
    )
    return {
        "messages": [AIMessage(content=reply, id=state.assistant_turn_id)],
        "reply": reply,
        "usage": usage,
    }


def after_generate(state: TurnState) -> str:
    """Run the tools the reply called, or record the finished reply."""
    return "record" if state.usage is not None else "tools"


async def record(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Persist the user message and the reply before the response completes.

    A regeneration (``graph.regenerate``) records only the new reply: its user turn is
    recorded already, and the stored prompt it re-sent keeps its sources.
    """
    ctx = runtime.context
    assert state.route is not None and state.usage is not None
    if ctx.temporary:  # nothing is stored
        return {}
    regenerating = state.regenerate is not None
    history: list[AnyMessage] = [m for m in state.messages if not isinstance(m, SystemMessage)]
    user_text, digest = _exchange(history, state.user_turn_id, state.reply, regenerating)
    user_turn = Turn(
        id=state.user_turn_id,
        user_id=ctx.user_id,
        thread_id=ctx.thread_id,
        role="user",
        content=user_text,
    )
    if state.received_at:
        user_turn.created_at = datetime.fromisoformat(state.received_at)
    assistant_turn = Turn(
        id=state.assistant_turn_id,
        user_id=ctx.user_id,
        thread_id=ctx.thread_id,
        role="assistant",
        content=state.reply,
        reply_to_id=state.user_turn_id,
        model_target=state.route["target"],
        prompt_version=state.prompt_version,
        prompt_versions={
            **graph_settings(ctx.services.settings, ArmSettings(**state.arm)).active_versions(),
            "system": state.prompt_version,
        },
        prompt_tokens=state.usage["prompt_tokens"],
        completion_tokens=state.usage["completion_tokens"],
        latency_ms=state.usage["latency_ms"],
        ttft_ms=state.usage["ttft_ms"],
        conversation_hash=digest,
    )
    await ctx.services.store.record_exchange(
        thread_id=ctx.thread_id,
        user_id=ctx.user_id,
        user_turn=user_turn,
        assistant_turn=assistant_turn,
    )
    if ctx.services.experiments is not None and state.experiments:
        arms = [cast(Assignment, a) for a in state.experiments]
        await ctx.services.experiments.expose(assistant_turn.id, ctx.user_id, arms)
    # Indexed before the response completes, so the next turn can already find them.
    memory = ctx.services.memory
    new_turns = [assistant_turn] if regenerating else [user_turn, assistant_turn]
    await asyncio.to_thread(memory.index_turns, new_turns)
    if regenerating:
        if ctx.services.after_turn is not None:  # its prompt inherits its sibling's sources
            hook = ctx.services.after_turn
            await asyncio.to_thread(hook, user_turn, assistant_turn, state.prompt_messages)
        return thread_update(state)
    if ctx.services.after_turn is not None:  # the API: keep the prompt, enqueue distillation
        hook = ctx.services.after_turn
        # The stored prompt names every turn whose text it holds: its messages' and the
        # quoted memories' sources (``memory.provenance``).
        sent = {(m["role"], m["content"]) for m in state.prompt_messages}
        shown = [str(m.id) for m in history if m.id and (role_of(m), text_of(m)) in sent]
        quoted = [m["id"] for m in state.memories]
        await asyncio.to_thread(
            hook, user_turn, assistant_turn, state.prompt_messages, quoted, shown
        )
    else:
        await asyncio.to_thread(memory.distill, user_turn)
    return {}


def _exchange(
    history: list[AnyMessage], user_turn_id: str, reply: str, regenerating: bool
) -> tuple[str, str | None]:
    """The user message ``reply`` answers, and the digest of the conversation up to it.

    A regeneration's user turn may be gone from the thread's state (it is recorded
    already): then neither is known.
    """
    ids = [m.id for m in history]
    if user_turn_id not in ids:
        if regenerating:
            return "", None
        raise ValueError("no user message in the turn")
    upto = history[: ids.index(user_turn_id) + 1]
    pairs = [*((role_of(m), text_of(m)) for m in upto), ("assistant", reply)]
    return text_of(upto[-1]), conversation_hash(pairs)
