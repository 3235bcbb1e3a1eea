"""Regeneration: another reply to a recorded prompt, exactly as it was sent.

``attune: {"regenerate": turn_id}`` on a chat request asks for an alternative to assistant
turn ``turn_id``. The model gets the stored prompt of that turn (system prompt, memories,
history as they were), on the same target when it is still available, so the two replies
differ only by sampling. The alternative is recorded as another assistant turn answering
the same user turn — which is what makes a (down-voted, up-voted regeneration) pair — and
takes the original's place in the thread's state when the original was its last message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessageChunk, RemoveMessage

from graph.conversation import conversation_hash
from graph.nodes import role_of, text_of, to_langchain
from graph.state import GenerationParams, Usage
from memory.records.tables import Turn, new_id

if TYPE_CHECKING:
    from graph.runner import TurnResult, TurnRunner


@dataclass(frozen=True)
class RegenerationRequest:
    """What to regenerate: the original reply, the user turn it answers, its prompt."""

    user_id: str
    original: Turn
    user_turn: Turn
    prompt: list[dict[str, str]]
    params: GenerationParams
    turn_id: str = field(default_factory=lambda: new_id("turn"))
    """The new reply's id."""


def adapter_of(target: str | None, is_available: Callable[[str], bool]) -> tuple[str | None, str]:
    """The adapter and target to regenerate on: the original's, if still available."""
    if target and ":" in target:
        adapter = target.split(":", 1)[1]
        if is_available(adapter):
            return adapter, target
    return None, "base"


async def regenerate(
    runner: TurnRunner, req: RegenerationRequest, emit: Callable[[str], None]
) -> TurnResult:
    """Generate, record and index the alternative reply; ``emit`` gets each piece."""
    from graph.runner import TurnResult

    services = runner.services
    backend = services.backend
    params = req.params
    adapter, target = adapter_of(req.original.model_target, backend.has_adapter)
    model = backend.chat_model(
        adapter=adapter,
        max_tokens=params.get("max_tokens", 256),
        temperature=params.get("temperature", 0.7),
        top_p=params.get("top_p", 1.0),
        stop=params.get("stop"),
        seed=params.get("seed"),
    )
    start = time.perf_counter()
    first: float | None = None
    message: BaseMessageChunk | None = None
    async for chunk in model.astream(to_langchain(req.prompt)):
        message = chunk if message is None else message + chunk
        if chunk.text:
            first = first or time.perf_counter()
            emit(chunk.text)
    end = time.perf_counter()
    reply = message.text if message is not None else ""
    meta: dict[str, Any] = dict(getattr(message, "usage_metadata", None) or {})
    prompt_tokens = int(
        meta.get("input_tokens", sum(backend.count_tokens(m["content"]) for m in req.prompt))
    )
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=int(meta.get("output_tokens", 0)),
        finish_reason=(message.response_metadata.get("finish_reason") if message else None)
        or "stop",
        ttft_ms=round(((first or end) - start) * 1000, 2),
        latency_ms=round((end - start) * 1000, 2),
    )
    thread_id = req.original.thread_id
    history = await runner.thread_messages(thread_id)
    ids = [m.id for m in history]
    digest = None
    if req.user_turn.id in ids:
        upto = history[: ids.index(req.user_turn.id) + 1]
        pairs = [(role_of(m), text_of(m)) for m in upto if role_of(m) != "system"]
        digest = conversation_hash([*pairs, ("assistant", reply)])
    turn = Turn(
        id=req.turn_id,
        user_id=req.user_id,
        thread_id=thread_id,
        role="assistant",
        content=reply,
        reply_to_id=req.user_turn.id,
        model_target=target,
        prompt_version=req.original.prompt_version,
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        latency_ms=usage["latency_ms"],
        ttft_ms=usage["ttft_ms"],
        conversation_hash=digest,
    )
    await services.store.record_exchange(
        thread_id=thread_id, user_id=req.user_id, user_turn=req.user_turn, assistant_turn=turn
    )
    if ids and ids[-1] == req.original.id:  # the original was the thread's last word
        await runner.graph.aupdate_state(
            runner._config(thread_id),
            {"messages": [RemoveMessage(id=req.original.id), AIMessage(reply, id=turn.id)]},
            as_node="record",
        )
    await asyncio.to_thread(services.memory.index_turns, [turn])
    if services.after_turn is not None:
        await asyncio.to_thread(services.after_turn, req.user_turn, turn, req.prompt)
    return TurnResult(
        turn_id=turn.id,
        user_turn_id=req.user_turn.id,
        thread_id=thread_id,
        content=reply,
        target=target,
        prompt_version=req.original.prompt_version or "",
        memory_ids=[],
        usage=usage,
    )
