"""``POST /v1/chat/completions``: OpenAI-compatible chat, plain or streamed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from adapters.errors import BackendUnavailableError
from api import idempotency
from api.admission import Admission, gate_of
from api.auth import CurrentUserId, ServicesDep
from api.errors import APIError, error_body
from api.limits import REFUSALS, Refused, check_honoured, request_tokens
from api.limits import reply_budget as reply_budget  # re-exported: api.routes.users
from api.limits import to_chat_messages as to_chat_messages
from api.protocol import (
    AttuneInfo,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageOut,
    Choice,
    ExperimentArm,
    UsageOut,
)
from api.services import AppServices
from graph.compose import PromptTooLongError
from graph.regenerate import RegenerationRequest
from graph.routing import LOGICAL_MODELS
from graph.runner import (
    USER_DELETED,
    DoneEvent,
    ErrorEvent,
    Event,
    InvalidTurnError,
    ThreadNotFoundError,
    TokenEvent,
    TurnRequest,
    TurnResult,
    TurnStream,
)
from graph.state import GenerationParams
from memory import pairs
from memory.records.tables import Turn, User

router = APIRouter()
log = logging.getLogger(__name__)
IDEMPOTENT_WAIT_S = 300.0
"""How long a repeat waits for the first request with its key before a 409."""


def check_model(model: str) -> None:
    """404 for a model name clients may not use."""
    if model not in LOGICAL_MODELS:
        raise APIError(
            404,
            f"the model {model!r} does not exist; use one of {', '.join(LOGICAL_MODELS)}",
            type="not_found_error",
            param="model",
        )


def to_turn_request(body: ChatCompletionRequest, services: AppServices) -> TurnRequest:
    """Validate what pydantic cannot (limits, models, what the backend honours); build it."""
    check_model(body.model)
    check_honoured(body, services)
    messages = to_chat_messages(body.messages, services.settings.server)
    if body.max_completion_tokens is not None:
        max_tokens = reply_budget(body.max_completion_tokens, "max_completion_tokens", services)
    else:
        max_tokens = reply_budget(body.max_tokens, "max_tokens", services)
    params = GenerationParams(
        model=body.model,
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_list(),
        seed=body.seed,
        sent=[f for f in ("temperature", "top_p") if f in body.model_fields_set],
    )
    if body.max_tokens is not None or body.max_completion_tokens is not None:
        params["sent"].append("max_tokens")
    if body.response_format is not None and body.response_format.for_backend() is not None:
        params["response_format"] = body.response_format.for_backend()
    temporary = body.attune is not None and body.attune.temporary
    return TurnRequest(
        messages=messages, params=params, thread_id=body.thread_id, temporary=temporary
    )


def turn_errors(exc: Exception) -> APIError:
    """Map errors of preparing a turn to client errors."""
    if isinstance(exc, ThreadNotFoundError):
        return APIError(404, str(exc), type="not_found_error", param="thread_id")
    if isinstance(exc, InvalidTurnError | PromptTooLongError):
        return APIError(400, str(exc), param="messages")
    raise exc


async def regeneration_request(
    services: AppServices, user_id: str, turn_id: str, params: GenerationParams
) -> RegenerationRequest:
    """The original reply and its stored prompt.

    404 for a turn that is not the user's reply, 409 for one recorded before prompts were
    kept.
    """

    def load() -> RegenerationRequest:
        with services.store.session() as session:
            original = session.get(Turn, turn_id)
            if original is None or original.user_id != user_id or original.role != "assistant":
                raise APIError(
                    404,
                    f"no assistant turn with id {turn_id!r} for this user",
                    type="not_found_error",
                    param="attune.regenerate",
                )
            user_turn = session.get(Turn, original.reply_to_id or "")
            stored = pairs.prompt_of(session, turn_id)
            if user_turn is None or stored is None:
                raise APIError(
                    409,
                    f"turn {turn_id!r} was recorded before prompts were kept, so it cannot be "
                    "regenerated exactly; send the conversation again instead",
                    type="invalid_request_error",
                    param="attune.regenerate",
                )
            return RegenerationRequest(
                user_id=user_id,
                original=original,
                user_turn=user_turn,
                prompt=list(stored.messages),
                params=params,
            )

    return await asyncio.to_thread(load)


def stream_deleted(what: asyncio.Task[Any] | BaseException) -> bool:
    """Whether a turn's task (or the error it ended with) was stopped by a user deletion."""
    if isinstance(what, asyncio.Task):
        if not what.cancelled():
            return False
        try:
            what.result()
        except asyncio.CancelledError as e:
            what = e
    return isinstance(what, asyncio.CancelledError) and USER_DELETED in what.args


def user_gone(services: AppServices, user_id: str) -> bool:
    """Whether the user no longer exists (deleted by another process mid-turn)."""
    with services.store.session() as session:
        return session.get(User, user_id) is None


def _observe(services: AppServices, result: TurnResult) -> None:
    m = services.metrics
    kind = result.target.split(":", 1)[0]
    m.turns.labels(target=kind, outcome="ok").inc()
    m.ttft_seconds.observe(result.usage["ttft_ms"] / 1000)
    m.generation_seconds.observe(result.usage["latency_ms"] / 1000)
    m.tokens.labels(kind="prompt").inc(result.usage["prompt_tokens"])
    m.tokens.labels(kind="completion").inc(result.usage["completion_tokens"])


def _attune(result: TurnResult) -> AttuneInfo:
    return AttuneInfo(
        turn_id=result.turn_id,
        thread_id=result.thread_id,
        target=result.target,
        prompt_version=result.prompt_version,
        memory_ids=result.memory_ids,
        experiments=[ExperimentArm(**e) for e in result.experiments],
        temporary=result.temporary,
        degraded=result.degraded,
    )


def _usage(result: TurnResult) -> UsageOut:
    p, c = result.usage["prompt_tokens"], result.usage["completion_tokens"]
    return UsageOut(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


Remember = Callable[[TurnResult, dict[str, Any]], Awaitable[None]]
"""Called with a finished turn and its response (as a non-streamed body), before the
response or its last chunk is sent: the idempotency store."""


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=REFUSALS)
async def chat_completions(
    body: ChatCompletionRequest,
    user_id: CurrentUserId,
    services: ServicesDep,
    raw: Request,
    response: Response,
) -> Any:
    """Chat. The reply is recorded before the response (or its last chunk) is sent.

    The key's rate limits, then admission (``api.admission``), come before anything runs:
    429 or 503 with ``Retry-After``, nothing recorded. With an ``Idempotency-Key`` header,
    a repeat of the request gets the first response again and nothing is recorded twice
    (``api.idempotency``).
    """
    request = to_turn_request(body, services)
    gate = gate_of(raw.app)
    quota = None
    try:
        quota = await gate.charge(raw.headers.get("authorization", ""), request_tokens(request))
        answer = await _chat(body, request, user_id, services, raw, gate.admission)
    except Refused as refused:
        return refused.response(quota.headers() if quota else None)
    if quota is not None:  # OpenAI's x-ratelimit-* headers on every answer
        (answer if isinstance(answer, Response) else response).headers.update(quota.headers())
    return answer


async def _chat(
    body: ChatCompletionRequest,
    request: TurnRequest,
    user_id: str,
    services: AppServices,
    raw: Request,
    admission: Admission,
) -> Any:
    """The admitted part of :func:`chat_completions`: idempotency, then the turn."""
    key = idempotency.checked_key(raw.headers.get(idempotency.HEADER))
    if key is not None and body.attune is not None and body.attune.temporary:
        raise APIError(
            400,
            f"a temporary chat stores nothing, not even for a retry: drop {idempotency.HEADER}",
            param=idempotency.HEADER,
        )
    if key is None:
        return await _respond(body, request, user_id, services, admission)
    digest = idempotency.body_hash(await raw.json())
    lock = idempotency.lock_for(user_id, key)
    try:
        await asyncio.wait_for(lock.acquire(), timeout=IDEMPOTENT_WAIT_S)
    except TimeoutError:
        raise APIError(
            409,
            f"a request with this {idempotency.HEADER} is still running; retry later",
            param=idempotency.HEADER,
        ) from None
    owned = True
    try:
        found = await asyncio.to_thread(idempotency.stored, services.engine, user_id, key, digest)
        if found is not None:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return idempotency.replay(found, stream=body.stream, include_usage=include_usage)

        async def remember(result: TurnResult, response: dict[str, Any]) -> None:
            await asyncio.to_thread(
                idempotency.store,
                services.engine,
                user_id,
                key,
                digest,
                user_turn_id=result.user_turn_id,
                turn_id=result.turn_id,
                response=response,
            )

        answer = await _respond(
            body, request, user_id, services, admission, remember=remember, done=lock.release
        )
        owned = not isinstance(answer, StreamingResponse)  # the stream releases it
        return answer
    finally:
        if owned:
            lock.release()


def _completion(body: ChatCompletionRequest, result: TurnResult, created: int) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{result.turn_id}",
        created=created,
        model=body.model,
        choices=[
            Choice(
                message=ChatMessageOut(content=result.content),
                finish_reason=result.usage["finish_reason"],
            )
        ],
        usage=_usage(result),
        attune=_attune(result),
    )


async def _respond(
    body: ChatCompletionRequest,
    request: TurnRequest,
    user_id: str,
    services: AppServices,
    admission: Admission,
    *,
    remember: Remember | None = None,
    done: Callable[[], None] | None = None,
) -> Any:
    """Admit the turn, run it and answer it.

    ``remember`` gets the finished turn; ``done`` is called when a streamed response has
    ended (however it ends).
    """
    runner = services.runner
    if body.attune is not None and body.attune.regenerate is not None and body.attune.temporary:
        raise APIError(
            400,
            "a temporary chat cannot regenerate a stored reply: send the conversation again",
            param="attune.temporary",
        )

    async def start() -> tuple[TurnStream, str]:
        if body.attune is not None and body.attune.regenerate is not None:
            regeneration = await regeneration_request(
                services, user_id, body.attune.regenerate, request.params
            )
            return runner.start_regeneration(regeneration), regeneration.turn_id
        try:
            prepared = await runner.prepare(user_id, request)
        except (ThreadNotFoundError, InvalidTurnError, PromptTooLongError) as exc:
            raise turn_errors(exc) from exc
        return runner.start(prepared), prepared.input.assistant_turn_id

    stream, reply_id = await admission.start(user_id, start)
    created = int(time.time())
    if not body.stream:
        try:
            # Shielded: a client that hangs up must not cancel the turn before it is recorded.
            result = await asyncio.shield(stream.task)
        except PromptTooLongError as exc:
            raise turn_errors(exc) from exc
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if stream_deleted(stream.task) and not (current and current.cancelling()):
                raise APIError(410, f"{USER_DELETED}; the reply was not recorded") from None
            raise
        except Exception:
            if await asyncio.to_thread(user_gone, services, user_id):  # deleted elsewhere
                raise APIError(410, f"{USER_DELETED}; the reply was not recorded") from None
            services.metrics.turns.labels(target="unknown", outcome="error").inc()
            raise
        _observe(services, result)
        completion = _completion(body, result, created)
        if remember is not None:
            await remember(result, completion.model_dump(mode="json", by_alias=True))
        return completion

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunk_id = f"chatcmpl-{reply_id}"
    # A turn no model server can take fails before its first token: it gets its status
    # (503 with Retry-After) as a non-streamed one does; later failures go into the stream.
    events = stream.events()
    first = await anext(events)
    if isinstance(first, ErrorEvent) and isinstance(first.error, BackendUnavailableError):
        services.metrics.turns.labels(target="unknown", outcome="error").inc()
        raise first.error
    if isinstance(first, ErrorEvent) and isinstance(first.error, PromptTooLongError):
        raise turn_errors(first.error) from first.error  # a client mistake: its 400, not a 200

    async def turn_events() -> AsyncIterator[Event]:
        yield first
        async for event in events:
            yield event

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    async def sse() -> AsyncIterator[str]:
        try:
            async for text in stream_chunks():
                yield text
        finally:
            if done is not None:
                done()

    async def stream_chunks() -> AsyncIterator[str]:
        # If the client goes away, this generator is closed; the turn's task is not.
        yield chunk({"role": "assistant", "content": ""})
        async for event in turn_events():
            if isinstance(event, TokenEvent):
                yield chunk({"content": event.text})
            elif isinstance(event, DoneEvent):
                result = event.result
                _observe(services, result)
                if remember is not None:
                    completion = _completion(body, result, created)
                    await remember(result, completion.model_dump(mode="json", by_alias=True))
                yield chunk(
                    {},
                    result.usage["finish_reason"],
                    attune=_attune(result).model_dump(),
                )
                if include_usage:
                    usage_chunk = {
                        "id": chunk_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": body.model,
                        "choices": [],
                        "usage": _usage(result).model_dump(),
                    }
                    yield f"data: {json.dumps(usage_chunk)}\n\n"
            elif isinstance(event, ErrorEvent) and stream_deleted(event.error):
                gone = f"{USER_DELETED}; the reply was not recorded"
                body_ = error_body(gone, "invalid_request_error")
                yield f"data: {json.dumps(body_)}\n\n"
            elif isinstance(event, ErrorEvent):
                services.metrics.turns.labels(target="unknown", outcome="error").inc()
                log.error("turn failed mid-stream", exc_info=event.error)
                message = (
                    str(event.error)
                    if isinstance(event.error, PromptTooLongError)
                    else "generation failed; the server log has the details"
                )
                yield f"data: {json.dumps(error_body(message, 'server_error'))}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
