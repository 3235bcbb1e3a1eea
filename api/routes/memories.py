"""Memory routes: history import, list/search/create/edit/delete memories, export, turns.

Validation errors here answer 422 (these are Attune's own routes, not OpenAI's).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from api.auth import ScopedUserId, ServicesDep
from api.errors import APIError
from api.export_stream import export_response
from api.protocol import MAX_INT
from api.protocol_memory import (
    HistoryImport,
    HistoryImported,
    MemoryCreate,
    MemoryKind,
    MemoryOut,
    MemoryPage,
    MemoryPatch,
    MemorySearchResult,
    memory_out,
)
from api.protocol_workers import JobOut, job_out
from memory.history import ImportResult, ImportSession, ImportTurn, import_history
from memory.records.tables import Turn
from memory.retrieval.dense_health import degraded
from memory.service import NewMemory
from workers import submit

log = logging.getLogger(__name__)


class Route422(APIRoute):
    """A route whose request-validation errors answer 422."""

    validation_status = 422


router = APIRouter(route_class=Route422)

Query_ = Annotated[str, Query(min_length=1, max_length=2000, description="What to look for.")]


def _not_found(what: str, ident: str) -> APIError:
    return APIError(404, f"no {what} with id {ident!r}", type="not_found_error")


@router.post("/v1/users/{user_id}/history", response_model=HistoryImported)
async def import_sessions(
    body: HistoryImport, user_id: ScopedUserId, services: ServicesDep
) -> HistoryImported:
    """Import past sessions; their turns are searchable when this returns.

    Re-importing the same ids adds nothing. Semantic extraction follows in a ``distill`` job.
    """
    sessions = [
        ImportSession(
            id=s.id,
            started_at=s.started_at,
            turns=[ImportTurn(t.id, t.role, t.content, t.speaker, t.created_at) for t in s.turns],
        )
        for s in body.sessions
    ]

    def work() -> ImportResult:
        result = import_history(services.engine, user_id=user_id, sessions=sessions)
        services.memory.import_turns(result.new_turns)  # vectors may follow (import_dense)
        return result

    result = await asyncio.to_thread(work)
    job = await asyncio.to_thread(submit.distill, services.jobs, result.new_turns)
    return HistoryImported(
        sessions=result.sessions,
        threads_created=result.threads_created,
        turns_imported=result.turns_imported,
        turns_skipped=result.turns_skipped,
        thread_ids=result.thread_ids,
        job_id=job.id if job is not None else None,
    )


@router.get("/v1/users/{user_id}/memories", response_model=MemoryPage)
async def list_memories(
    user_id: ScopedUserId,
    services: ServicesDep,
    kind: MemoryKind | None = None,
    include_invalid: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> MemoryPage:
    """The user's memories, newest first (superseded ones included unless asked not to)."""
    views, total = await asyncio.to_thread(
        services.memory.list,
        user_id,
        kind=kind,
        include_invalid=include_invalid,
        limit=limit,
        offset=offset,
    )
    return MemoryPage(data=[memory_out(v) for v in views], total=total, limit=limit, offset=offset)


@router.get("/v1/users/{user_id}/memories/search", response_model=MemorySearchResult)
async def search_memories(
    user_id: ScopedUserId,
    services: ServicesDep,
    q: Query_,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    kind: Annotated[list[MemoryKind] | None, Query()] = None,
    include_invalid: bool = False,
) -> MemorySearchResult:
    """Hybrid search (dense + lexical + recency) over the user's memories."""
    if not q.strip():
        raise APIError(422, "q must contain some text", param="q")
    views = await asyncio.to_thread(
        services.memory.search,
        user_id,
        q,
        k=k,
        kinds=kind,
        include_invalid=include_invalid,
    )
    return MemorySearchResult(
        query=q, data=[memory_out(v) for v in views], degraded=list(degraded(views))
    )


@router.post("/v1/users/{user_id}/memories", response_model=MemoryOut, status_code=201)
async def create_memory(
    body: MemoryCreate, user_id: ScopedUserId, services: ServicesDep
) -> MemoryOut:
    """Write a memory by hand (as in a "manage memory" screen); it has no source turns."""
    views = await asyncio.to_thread(
        services.memory.add, user_id, [NewMemory(kind=body.kind, text=body.text, speaker="user")]
    )
    return memory_out(views[0])


@router.get("/v1/users/{user_id}/memories/{memory_id}", response_model=MemoryOut)
async def get_memory(user_id: ScopedUserId, memory_id: str, services: ServicesDep) -> MemoryOut:
    """One memory with its sources."""
    view = await asyncio.to_thread(services.memory.get, user_id, memory_id)
    if view is None:
        raise _not_found("memory", memory_id)
    return memory_out(view)


@router.patch("/v1/users/{user_id}/memories/{memory_id}", response_model=MemoryOut)
async def edit_memory(
    body: MemoryPatch, user_id: ScopedUserId, memory_id: str, services: ServicesDep
) -> MemoryOut:
    """Change a memory's text or kind; it is re-indexed at once."""
    view = await asyncio.to_thread(
        services.memory.update, user_id, memory_id, text=body.text, kind=body.kind
    )
    if view is None:
        raise _not_found("memory", memory_id)
    return memory_out(view)


@router.delete("/v1/users/{user_id}/memories/{memory_id}", status_code=204)
async def delete_memory(user_id: ScopedUserId, memory_id: str, services: ServicesDep) -> Response:
    """Delete a memory from every store (rows, vectors, terms)."""
    if not await asyncio.to_thread(services.memory.delete, user_id, [memory_id]):
        raise _not_found("memory", memory_id)
    return Response(status_code=204)


@router.delete("/v1/users/{user_id}/turns/{turn_id}", status_code=202, response_model=JobOut)
async def delete_turn_route(user_id: ScopedUserId, turn_id: str, services: ServicesDep) -> JobOut:
    """Delete a turn and everything derived from it; answers at once with the job.

    The turn leaves its thread's state now; its memories, what it caused in the profile,
    its feedback, preference pairs and the turn itself go in a ``delete_turn`` job.
    """

    def thread_of() -> str | None:
        with services.store.session() as session:
            turn = session.get(Turn, turn_id)
            return turn.thread_id if turn is not None and turn.user_id == user_id else None

    thread_id = await asyncio.to_thread(thread_of)
    if thread_id is None:
        raise _not_found("turn", turn_id)
    await services.runner.forget_messages(thread_id, [turn_id])
    job = await asyncio.to_thread(
        submit.delete_turn, services.jobs, user_id=user_id, turn_id=turn_id
    )
    return job_out(job)


@router.get(
    "/v1/users/{user_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def export(user_id: ScopedUserId, services: ServicesDep) -> StreamingResponse:
    """Everything held about the user, as JSON: records, derived data and thread state.

    One JSON document, streamed as it is read (``api.export_stream``): long sections a
    batch of rows at a time, so any history exports in bounded memory.
    """
    try:
        return await export_response(services.core.export, services.runner.graph, user_id)
    except LookupError:  # deleted since the key was checked
        raise _not_found("user", user_id) from None
