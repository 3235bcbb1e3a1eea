"""The user export as one JSON document written while it is read, never held whole.

``GET /v1/users/{id}/export`` answers with the document it always had: the parts of
``memory.export.UserExport`` in order, then ``thread_state``. Long sections (threads,
turns, memories, stored prompts, ...) are read and written a batch of rows at a time, thread
state a thread at a time, so the server holds about one batch whatever the history's size
(a 20k-turn user is some 15 MB of JSON). Each value is encoded as FastAPI encodes a
returned dict (compact JSON, ``jsonable_encoder`` for what is not JSON-ready), so the
document is the one a non-streamed response carried.

The user is read before the response starts, so an unknown user still answers 404. A
failure later can only cut the body short: the client gets invalid JSON, never a
truncated document that parses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import chain
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse

from graph.thread_export import StateReader, thread_states
from memory.export import EXPORT_BATCH, Part, Rows, UserExport

CHUNK_BYTES = 64 * 1024
"""Pieces are joined up to about this size before they are sent (fewer thread hops)."""


async def export_response(
    export: UserExport, graph: StateReader, user_id: str, *, batch: int = EXPORT_BATCH
) -> StreamingResponse:
    """The streamed export of ``user_id``; the records ``batch`` rows per read.

    Raises:
        LookupError: No such user (before any byte is sent).
    """
    parts = export.parts(user_id, batch=batch)
    first = await asyncio.to_thread(next, parts)
    return StreamingResponse(_body(chain([first], parts), graph), media_type="application/json")


async def _body(parts: Iterator[Part], graph: StateReader) -> AsyncIterator[bytes]:
    """The document: the records (read in a worker thread, chunk by chunk), thread state."""
    thread_ids: list[str] = []
    chunks = chunked(encode_parts(parts, thread_ids), CHUNK_BYTES)
    yield b"{"
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk
    yield b',"thread_state":{'
    sep = b""
    async for thread_id, values in thread_states(graph, thread_ids):
        yield sep + dumps(thread_id).encode() + b":" + dumps(values).encode()
        sep = b","
    yield b"}}"


def encode_parts(parts: Iterable[Part], thread_ids: list[str]) -> Iterator[str]:
    """``"key":value`` pieces of a JSON object's members, comma-separated, no braces.

    A :class:`~memory.export.Rows` value is written as an array a batch at a time. The ids
    of the ``threads`` section are appended to ``thread_ids`` as they pass (thread state
    follows the records).
    """
    for i, (key, value) in enumerate(parts):
        head = ("," if i else "") + dumps(key) + ":"
        if not isinstance(value, Rows):
            if key == "threads":
                thread_ids.extend(t["id"] for t in value)
            yield head + dumps(value)
            continue
        yield head + "["
        sep = ""
        for rows in value.batches:
            if not rows:
                continue
            if key == "threads":
                thread_ids.extend(t["id"] for t in rows)
            yield sep + ",".join(dumps(row) for row in rows)
            sep = ","
        yield "]"


def chunked(pieces: Iterable[str], size: int) -> Iterator[bytes]:
    """``pieces`` joined and encoded, in chunks of about ``size`` bytes (the last shorter)."""
    buffer: list[bytes] = []
    held = 0
    for piece in pieces:
        data = piece.encode()
        buffer.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def dumps(value: Any) -> str:
    """``value`` as FastAPI's JSON responses write it (compact, UTF-8, no NaN).

    The records are JSON-ready already; anything that is not (a datetime, a model) goes
    through ``jsonable_encoder``, as in a returned dict.
    """
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_encode
    )


def _encode(value: Any) -> Any:
    encoded = jsonable_encoder(value)
    if encoded is value:  # would loop: json cannot write it, and neither can FastAPI
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
    return encoded
