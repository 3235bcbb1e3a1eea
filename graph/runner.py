"""Running turns: thread resolution, background execution and streaming events.

The API calls this; it owns no HTTP. A turn runs in its own asyncio task, so a client that
disconnects mid-stream does not cancel it: the reply is still generated and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal, cast

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from graph import telemetry
from graph.builder import build_turn_graph
from graph.context import Services, TurnContext
from graph.conversation import conversation_hash
from graph.nodes import text_of
from graph.regenerate import RegenerationRequest
from graph.state import GenerationParams, InputState, MemoryItem, Route, TurnState, Usage
from memory.records.tables import Turn, new_id

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a request."""

    role: Role
    content: str


@dataclass(frozen=True)
class TurnRequest:
    """A validated chat request: messages, an optional thread and sampling parameters."""

    messages: Sequence[ChatMessage]
    params: GenerationParams
    thread_id: str | None = None
    temporary: bool = False
    """Read no memory and store nothing (``TurnContext.temporary``)."""


USER_DELETED = "the user was deleted while the reply was being generated"
"""The cancel message of a turn stopped by :meth:`TurnRunner.cancel_user`."""


class ThreadNotFoundError(LookupError):
    """The thread does not exist or belongs to another user."""


class InvalidTurnError(ValueError):
    """The request cannot make a turn (for example, it does not end with a user message)."""


@dataclass(frozen=True)
class TurnResult:
    """A finished turn, as the API reports it."""

    turn_id: str
    user_turn_id: str
    thread_id: str
    content: str
    target: str
    prompt_version: str
    memory_ids: list[str]
    usage: Usage
    experiments: list[dict[str, Any]] = field(default_factory=list)
    """The turn's arms: ``experiment_id``, ``name``, ``arm`` (``graph.experiments``)."""
    temporary: bool = False
    """Nothing of the turn was stored: its ids name nothing."""
    degraded: list[str] = field(default_factory=list)
    """What recall ranked without (``["dense"]`` while the vector index is down)."""


@dataclass(frozen=True)
class Preview:
    """What a turn would send, without generating."""

    thread_id: str | None
    system_prompt: str
    messages: list[dict[str, str]]
    memories: list[MemoryItem]
    route: Route
    prompt_version: str
    prompt_tokens: int
    profile_updates: list[dict[str, Any]]


@dataclass(frozen=True)
class PreparedTurn:
    """A turn ready to run: its thread and the graph input."""

    thread_id: str
    input: InputState
    context: TurnContext


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the reply."""

    text: str


@dataclass(frozen=True)
class DoneEvent:
    """The turn finished and is recorded."""

    result: TurnResult


@dataclass(frozen=True)
class ErrorEvent:
    """The turn failed."""

    error: BaseException


Event = TokenEvent | DoneEvent | ErrorEvent


@dataclass
class TurnStream:
    """Events of a running turn. Iterating is optional: the turn completes regardless."""

    task: asyncio.Task[TurnResult]
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    async def events(self) -> AsyncIterator[Event]:
        """Yield events until the turn is done or has failed."""
        while True:
            event = await self.queue.get()
            yield event
            if not isinstance(event, TokenEvent):
                return


class TurnRunner:
    """Runs turns of the compiled graph for users."""

    def __init__(
        self,
        *,
        graph: CompiledStateGraph[TurnState, TurnContext, InputState, TurnState],
        preview_graph: CompiledStateGraph[TurnState, TurnContext, InputState, TurnState],
        services: Services,
    ) -> None:
        """Use ``graph`` (compiled with a checkpointer) and ``preview_graph`` (without).

        Temporary chats run the turn graph compiled without a checkpointer.
        """
        self.graph = graph
        self.preview_graph = preview_graph
        self.temporary_graph = build_turn_graph().compile()
        self.services = services
        self._tasks: set[asyncio.Task[TurnResult]] = set()
        self._by_user: dict[str, set[asyncio.Task[TurnResult]]] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def _config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    async def thread_messages(self, thread_id: str) -> list[AnyMessage]:
        """The checkpointed messages of ``thread_id`` (empty for a new thread)."""
        snapshot = await self.graph.aget_state(self._config(thread_id))
        return list(snapshot.values.get("messages", [])) if snapshot.values else []

    async def _resolve(
        self, user_id: str, request: TurnRequest
    ) -> tuple[str | None, list[BaseMessage], str | None]:
        """Find the thread and the new messages: ``(thread_id or None, messages, system)``."""
        if not request.messages or request.messages[-1].role != "user":
            raise InvalidTurnError("the last message must have role 'user'")
        system = "\n\n".join(m.content for m in request.messages if m.role == "system") or None
        prior = [m for m in request.messages[:-1] if m.role != "system"]
        new = request.messages[-1].content
        store = self.services.store
        if request.temporary:
            if request.thread_id is not None:
                raise InvalidTurnError(
                    "a temporary chat cannot continue a stored thread: leave thread_id out "
                    "and send the whole conversation"
                )
            return None, self._seeded(prior, new), system
        if request.thread_id is not None:
            if await store.thread_owner(request.thread_id) != user_id:
                raise ThreadNotFoundError(f"no thread {request.thread_id!r} for this user")
            return request.thread_id, [HumanMessage(content=new)], system
        if prior:
            digest = conversation_hash((m.role, m.content) for m in prior)
            found = await store.find_thread(user_id, digest)
            if found is not None:
                return found, [HumanMessage(content=new)], system
        return None, self._seeded(prior, new), system

    @staticmethod
    def _seeded(prior: Sequence[ChatMessage], new: str) -> list[BaseMessage]:
        """The request's earlier messages and the new one, as a new thread starts."""
        seeded: list[BaseMessage] = [
            HumanMessage(content=m.content) if m.role == "user" else AIMessage(content=m.content)
            for m in prior
        ]
        return [*seeded, HumanMessage(content=new)]

    async def prepare(self, user_id: str, request: TurnRequest) -> PreparedTurn:
        """Resolve the thread and build the graph input; raises on a request that can't run."""
        thread_id, messages, system = await self._resolve(user_id, request)
        user_turn_id, assistant_turn_id = new_id("turn"), new_id("turn")
        messages[-1].id = user_turn_id
        thread_id = thread_id or new_id("tmp" if request.temporary else "thr")
        state_input = InputState(
            messages=list(messages),  # type: ignore[arg-type]
            params=request.params,
            client_system=system,
            user_turn_id=user_turn_id,
            assistant_turn_id=assistant_turn_id,
            received_at=self.services.clock().isoformat(),
        )
        context = TurnContext(
            user_id=user_id,
            thread_id=thread_id,
            services=self.services,
            temporary=request.temporary,
        )
        if not request.temporary:  # on disk before any reply: a crash loses no message
            user_turn = Turn(
                id=user_turn_id,
                user_id=user_id,
                thread_id=thread_id,
                role="user",
                content=text_of(messages[-1]),
                created_at=datetime.fromisoformat(state_input.received_at),
            )
            await self.services.store.accept_message(
                thread_id=thread_id, user_id=user_id, user_turn=user_turn
            )
        return PreparedTurn(thread_id=thread_id, input=state_input, context=context)

    def start(self, turn: PreparedTurn) -> TurnStream:
        """Run ``turn`` in a background task and return its event stream."""
        return self._spawn(
            turn.context.user_id,
            turn.thread_id,
            f"turn:{turn.thread_id}",
            partial(self._turn, turn),
        )

    def cancel_user(self, user_id: str) -> int:
        """Stop the user's running turns (the user is being deleted); how many were running.

        A cancelled turn records nothing: its task ends with ``CancelledError`` before the
        ``record`` node's write, and its stream with an error event.
        """
        tasks = [t for t in self._by_user.get(user_id, set()) if not t.done()]
        for task in tasks:
            task.cancel(USER_DELETED)
        return len(tasks)

    def start_regeneration(self, request: RegenerationRequest) -> TurnStream:
        """Regenerate a recorded reply through the turn graph (``graph.regenerate``)."""
        thread_id = request.original.thread_id
        turn = PreparedTurn(
            thread_id=thread_id,
            input=request.graph_input(),
            context=TurnContext(
                user_id=request.user_id, thread_id=thread_id, services=self.services
            ),
        )
        return self._spawn(
            request.user_id, thread_id, f"regenerate:{thread_id}", partial(self._turn, turn)
        )

    def _spawn(
        self,
        user_id: str,
        thread_id: str,
        name: str,
        work: Callable[[Callable[[str], None]], Awaitable[TurnResult]],
    ) -> TurnStream:
        """Run ``work`` (given a token callback) under the thread's lock, as an event stream."""
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def run() -> TurnResult:
            lock = self._locks.setdefault(thread_id, asyncio.Lock())
            try:
                async with lock:  # one turn at a time per thread keeps its history linear
                    result = await work(lambda text: queue.put_nowait(TokenEvent(text)))
            except BaseException as exc:
                queue.put_nowait(ErrorEvent(exc))
                raise
            queue.put_nowait(DoneEvent(result))
            return result

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        mine = self._by_user.setdefault(user_id, set())
        mine.add(task)

        def finished(done: asyncio.Task[TurnResult]) -> None:
            self._tasks.discard(done)
            mine.discard(done)
            if not mine and self._by_user.get(user_id) is mine:
                del self._by_user[user_id]

        task.add_done_callback(finished)
        return TurnStream(task=task, queue=queue)

    async def run(self, user_id: str, request: TurnRequest) -> TurnResult:
        """Run a turn to the end and return its result."""
        stream = self.start(await self.prepare(user_id, request))
        return await asyncio.shield(stream.task)

    async def _turn(self, turn: PreparedTurn, emit: Callable[[str], None]) -> TurnResult:
        ids = turn.context.user_id, turn.thread_id, turn.input.assistant_turn_id
        with telemetry.turn_scope(user_id=ids[0], thread_id=ids[1], turn_id=ids[2]):
            return await self._run_graph(turn, emit)

    async def _run_graph(self, turn: PreparedTurn, emit: Callable[[str], None]) -> TurnResult:
        final: dict[str, Any] = {}
        graph = self.temporary_graph if turn.context.temporary else self.graph
        try:
            async for item in graph.astream(
                turn.input,
                self._config(turn.thread_id),
                context=turn.context,
                stream_mode=["custom", "values"],
            ):
                mode, chunk = cast(tuple[str, dict[str, Any]], item)
                if mode == "custom" and chunk.get("type") == "token":
                    emit(chunk["text"])
                elif mode == "values":
                    final = chunk
        except (Exception, asyncio.CancelledError):
            if not turn.context.temporary and turn.input.regenerate is None:
                with contextlib.suppress(Exception):  # a deleted user's turn is gone already
                    await self.services.store.mark_interrupted(turn.input.user_turn_id)
            book = self.services.experiments
            arms = final.get("experiments") if not turn.context.temporary else None
            if book is not None and arms:  # a failure counts against its arms
                with contextlib.suppress(Exception):
                    await book.expose(
                        turn.input.assistant_turn_id, turn.context.user_id, arms, failed=True
                    )
            raise
        return _result(turn, final)

    async def preview(self, user_id: str, request: TurnRequest) -> Preview:
        """Compose the turn as it would run now, without generating or persisting."""
        thread_id, messages, system = await self._resolve(user_id, request)
        history = await self.thread_messages(thread_id) if thread_id else []
        state_input = InputState(
            messages=[*history, *messages],  # type: ignore[list-item]
            params=request.params,
            client_system=system,
        )
        context = TurnContext(
            user_id=user_id, thread_id=thread_id or "", services=self.services, dry_run=True
        )
        final = await self.preview_graph.ainvoke(state_input, context=context)
        return Preview(
            thread_id=thread_id,
            system_prompt=final["system_prompt"],
            messages=final["prompt_messages"],
            memories=final["memories"],
            route=final["route"],
            prompt_version=final["prompt_version"],
            prompt_tokens=final["prompt_tokens_estimate"],
            profile_updates=final["profile_updates"],
        )

    async def forget_threads(self, thread_ids: Sequence[str]) -> None:
        """Delete the checkpointed state of ``thread_ids``."""
        checkpointer = self.graph.checkpointer
        if checkpointer is None or checkpointer is True or checkpointer is False:
            return
        for thread_id in thread_ids:
            await checkpointer.adelete_thread(thread_id)

    async def forget_messages(self, thread_id: str, message_ids: Sequence[str]) -> None:
        """Remove messages (turn ids) from a thread's checkpointed history."""
        present = {m.id for m in await self.thread_messages(thread_id)}
        doomed = [m for m in message_ids if m in present]
        if not doomed:
            return
        await self.graph.aupdate_state(
            self._config(thread_id),
            {"messages": [RemoveMessage(id=m) for m in doomed]},
            as_node="record",
        )

    async def drain(self) -> None:
        """Wait for turns still running (at shutdown), so none is lost half-recorded."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _result(turn: PreparedTurn, final: dict[str, Any]) -> TurnResult:
    route: Route = final["route"]
    memories: list[MemoryItem] = final.get("memories", [])
    return TurnResult(
        turn_id=turn.input.assistant_turn_id,
        user_turn_id=turn.input.user_turn_id,
        thread_id=turn.thread_id,
        content=final["reply"],
        target=route["target"],
        prompt_version=final["prompt_version"],
        memory_ids=[m["id"] for m in memories],
        usage=final["usage"],
        experiments=[
            {k: a[k] for k in ("experiment_id", "name", "arm")}
            for a in final.get("experiments", [])
        ],
        temporary=turn.context.temporary,
        degraded=list(final.get("degraded", [])),
    )
