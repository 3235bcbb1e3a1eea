"""Thread state for the user export: each thread's latest checkpointed values, as JSON.

The export lists everything held about a user; a thread's state in the checkpointer (its
messages and the channels of its last run: system prompt, prompt messages, recalled
memories, ...) is held apart from the records, so the API adds it with
:func:`export_threads` (or, streaming, :func:`thread_states`) beside
``memory.export.UserExport``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

from graph.nodes import role_of, text_of


class StateReader(Protocol):
    """A compiled graph with a checkpointer (``TurnRunner.graph``)."""

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's latest state."""
        ...


async def export_threads(graph: StateReader, thread_ids: Sequence[str]) -> dict[str, Any]:
    """Thread id → its latest checkpointed values as JSON (threads without state left out)."""
    return {thread_id: values async for thread_id, values in thread_states(graph, thread_ids)}


async def thread_states(
    graph: StateReader, thread_ids: Iterable[str]
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Each thread's id and latest checkpointed values as JSON, one thread at a time.

    Threads without state are left out. A streamed export writes each one as it comes.
    """
    for thread_id in thread_ids:
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        if snapshot.values:
            yield thread_id, {k: _plain(v) for k, v in dict(snapshot.values).items()}


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: messages as ``{id, role, content}``."""
    if isinstance(value, BaseMessage):
        return {"id": value.id, "role": role_of(value), "content": text_of(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
