"""``Idempotency-Key`` for chat: a retried request gets the first response, recorded once.

A client that times out and retries, or sends the same request twice, would otherwise
record the message twice and get two different replies. With the header, the first
request's response is stored with its turns (``memory.records.tables.IdempotentRequest``)
and every repeat with the same key and the same body gets that response again, marked
``Idempotent-Replayed: true``, without generating or recording anything. The same key
with a different body is refused (422): a key names one request.

Repeats that arrive while the first is still generating wait for it (a lock per user and
key, in this process) and then replay it. Keys are per user: another user's key is never
looked at. A request that failed stored nothing, so its retry runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.errors import APIError
from memory.records.tables import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")

_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()


def checked_key(value: str | None) -> str | None:
    """The header's key, or ``None`` without one.

    Raises:
        APIError: 400 when it is empty, too long or holds other characters.
    """
    if value is None:
        return None
    if not _KEY.match(value):
        raise APIError(
            400,
            f"{HEADER} must be 1-200 letters, digits or . _ : - (a UUID is fine)",
            param=HEADER,
        )
    return value


def lock_for(user_id: str, key: str) -> asyncio.Lock:
    """The lock that serializes requests of ``user_id`` with ``key`` in this process."""
    lock = _locks.get((user_id, key))
    if lock is None:
        lock = _locks[(user_id, key)] = asyncio.Lock()
    return lock


def body_hash(body: dict[str, Any]) -> str:
    """A digest of the request body as the client sent it (key order ignored)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def stored(engine: Engine, user_id: str, key: str, digest: str) -> dict[str, Any] | None:
    """The response stored for ``key``, or ``None`` if the key is new.

    Raises:
        APIError: 422 when the key was used with a different body.
    """
    with Session(engine) as session:
        row = session.get(IdempotentRequest, (user_id, key))
        if row is None:
            return None
        if row.request_hash != digest:
            raise APIError(
                422,
                f"this {HEADER} was already used with a different request; "
                "use a new key for a new request",
                param=HEADER,
            )
        return dict(row.response)


def store(
    engine: Engine,
    user_id: str,
    key: str,
    digest: str,
    *,
    user_turn_id: str,
    turn_id: str,
    response: dict[str, Any],
) -> None:
    """Store the response of a finished request (a row already there is kept)."""
    with Session(engine) as session:
        session.add(
            IdempotentRequest(
                user_id=user_id,
                key=key,
                request_hash=digest,
                user_turn_id=user_turn_id,
                turn_id=turn_id,
                response=response,
            )
        )
        try:
            session.commit()
        except sa.exc.IntegrityError:  # another process stored it first: theirs stands
            session.rollback()


def replay(stored: dict[str, Any], *, stream: bool, include_usage: bool) -> Response:
    """The stored response again (marked replayed), as a stream if the repeat asks for one."""
    headers = {REPLAYED: "true"}
    if not stream:
        return JSONResponse(stored, headers=headers)

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {
            "id": stored["id"],
            "object": "chat.completion.chunk",
            "created": stored["created"],
            "model": stored["model"],
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    async def sse() -> AsyncIterator[str]:
        choice = stored["choices"][0]
        yield event(delta({"role": "assistant", "content": ""}))
        yield event(delta({"content": choice["message"]["content"]}))
        yield event(delta({}, choice["finish_reason"]), attune=stored.get("attune"))
        if include_usage:
            yield event([], usage=stored["usage"])
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
    )
