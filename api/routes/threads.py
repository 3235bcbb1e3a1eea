"""Threads for people: list, read, rename, delete; and "why this answer" for a reply.

A thread or turn of another user answers 404, the same as one that does not exist.
Validation errors answer 422 (Attune's own routes, not OpenAI's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import ColumnElement, and_, exists, literal, not_
from sqlmodel import Session, col, func, select

from api.auth import ScopedUserId, ServicesDep
from api.errors import APIError
from api.protocol import ID_PATTERN, MAX_INT
from api.protocol_web import (
    SourceTurn,
    ThreadDeleted,
    ThreadDetail,
    ThreadOut,
    ThreadPage,
    ThreadPatch,
    TurnLocated,
    TurnOut,
    WhyArm,
    WhyMemory,
    WhyOut,
)
from api.protocol_workers import job_out
from api.routes.memories import Route422
from api.services import AppServices
from memory import pairs
from memory.provenance import quoting_memories
from memory.records import jobs as job_records
from memory.records.experiments import Experiment, ExperimentExposure
from memory.records.jobs import Job
from memory.records.tables import Feedback, Memory, MemorySource, Thread, Turn, utcnow
from workers import submit

log = logging.getLogger(__name__)
router = APIRouter(route_class=Route422, tags=["threads"])

ThreadId = Annotated[str, Path(description="A thread id (``thr_…``).")]
TurnId = Annotated[str, Path(description="A turn id (``turn_…``).")]
REAP_POLL_S = 0.5
REAP_WITHIN_S = 3600.0
"""How long a thread deletion waits for its turns' jobs before leaving the (empty) row."""
_reapers: set[asyncio.Task[None]] = set()
"""Running thread-row reapers, kept so they are not garbage-collected mid-way."""


def _no_thread(thread_id: str) -> APIError:
    return APIError(
        404, f"no thread with id {thread_id!r}", type="not_found_error", param="thread_id"
    )


def _listed() -> ColumnElement[bool]:
    """Threads that hold turns and are not being deleted.

    A thread being deleted has its title cleared and a ``delete_turn`` job queued or
    running for its turns; once they are done it has no turns, then no row.
    """
    pending = (
        select(Job.id)
        .join(Turn, col(Job.key) == literal("delete_turn:") + col(Turn.id))
        .where(col(Turn.thread_id) == col(Thread.id), col(Job.status).in_(("queued", "running")))
    )
    has_turns = exists().where(col(Turn.thread_id) == col(Thread.id))
    return and_(has_turns, not_(and_(col(Thread.title).is_(None), exists(pending))))


def _own_thread(session: Session, user_id: str, thread_id: str) -> Thread:
    """The user's thread, if it is listed; else 404."""
    if not ID_PATTERN.fullmatch(thread_id):
        raise _no_thread(thread_id)
    thread = session.exec(
        select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id, _listed())
    ).first()
    if thread is None:
        raise _no_thread(thread_id)
    return thread


def _counts(session: Session, thread_ids: Sequence[str]) -> dict[str, int]:
    if not thread_ids:
        return {}
    rows = session.exec(
        select(Turn.thread_id, func.count())
        .where(col(Turn.thread_id).in_(list(thread_ids)))
        .group_by(col(Turn.thread_id))
    ).all()
    return {thread_id: int(n) for thread_id, n in rows}


def _thread_out(thread: Thread, turns: int) -> ThreadOut:
    return ThreadOut(
        id=thread.id,
        title=thread.title,
        created_at=thread.created_at,
        last_activity=thread.updated_at,
        turns=turns,
    )


def _turn_out(turn: Turn, rating: str | None) -> TurnOut:
    return TurnOut(
        id=turn.id,
        role=turn.role,
        content=turn.content,
        created_at=turn.created_at,
        external_id=turn.external_id,
        reply_to_id=turn.reply_to_id,
        target=turn.model_target,
        prompt_version=turn.prompt_version,
        rating=rating,
    )


@router.get("/v1/users/{user_id}/threads", response_model=ThreadPage)
async def list_threads(
    user_id: ScopedUserId,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> ThreadPage:
    """The user's threads, most recently active first (threads being deleted are left out)."""

    def work() -> ThreadPage:
        with services.store.session() as session:
            where = (col(Thread.user_id) == user_id, _listed())
            total = session.exec(select(func.count()).select_from(Thread).where(*where)).one()
            rows = session.exec(
                select(Thread)
                .where(*where)
                .order_by(col(Thread.updated_at).desc(), col(Thread.id))
                .offset(offset)
                .limit(limit)
            ).all()
            counts = _counts(session, [t.id for t in rows])
            data = [_thread_out(t, counts.get(t.id, 0)) for t in rows]
        return ThreadPage(data=data, total=int(total), limit=limit, offset=offset)

    return await asyncio.to_thread(work)


@router.get("/v1/users/{user_id}/threads/{thread_id}", response_model=ThreadDetail)
async def get_thread(
    user_id: ScopedUserId, thread_id: ThreadId, services: ServicesDep
) -> ThreadDetail:
    """A thread's turns, oldest first, with each reply's route, prompt version and vote."""

    def work() -> ThreadDetail:
        with services.store.session() as session:
            thread = _own_thread(session, user_id, thread_id)
            turns = list(
                session.exec(
                    select(Turn)
                    .where(Turn.user_id == user_id, Turn.thread_id == thread_id)
                    .order_by(col(Turn.created_at), col(Turn.role).desc(), col(Turn.id))
                ).all()
            )
            ratings: dict[str, str] = {}
            for turn_id, rating in session.exec(
                select(Feedback.turn_id, Feedback.rating)
                .where(col(Feedback.turn_id).in_([t.id for t in turns]))
                .order_by(col(Feedback.created_at))
            ).all():
                ratings[turn_id] = rating  # the latest vote wins
            out = [_turn_out(t, ratings.get(t.id)) for t in turns]
            return ThreadDetail(thread=_thread_out(thread, len(turns)), turns=out)

    return await asyncio.to_thread(work)


@router.patch("/v1/users/{user_id}/threads/{thread_id}", response_model=ThreadOut)
async def rename_thread(
    body: ThreadPatch, user_id: ScopedUserId, thread_id: ThreadId, services: ServicesDep
) -> ThreadOut:
    """Give the thread a title of the user's choosing."""

    def work() -> ThreadOut:
        with services.store.session() as session:
            thread = _own_thread(session, user_id, thread_id)
            turns = _counts(session, [thread.id]).get(thread.id, 0)
            thread.title = body.title
            session.add(thread)
            session.commit()
            session.refresh(thread)
            return _thread_out(thread, turns)

    return await asyncio.to_thread(work)


@router.delete(
    "/v1/users/{user_id}/threads/{thread_id}", response_model=ThreadDeleted, status_code=202
)
async def delete_thread(
    user_id: ScopedUserId, thread_id: ThreadId, services: ServicesDep
) -> ThreadDeleted:
    """Delete a thread and everything derived from it; answers at once with the jobs.

    Now: the thread's checkpointed state goes, its title and external id are cleared and
    it leaves the listing. Each turn then goes through the ``delete_turn`` cascade (its
    memories, vectors, profile changes, feedback, preference pairs, stored prompts and the
    adapters trained on them); when every job has finished, the empty row goes too.
    """

    def start() -> list[str]:
        with services.store.session() as session:
            thread = _own_thread(session, user_id, thread_id)
            turn_ids = list(session.exec(select(Turn.id).where(Turn.thread_id == thread_id)).all())
            thread.title, thread.external_id, thread.updated_at = None, None, utcnow()
            session.add(thread)
            session.commit()
            return turn_ids

    turn_ids = await asyncio.to_thread(start)
    await services.runner.forget_threads([thread_id])
    jobs = await asyncio.to_thread(
        lambda: [submit.delete_turn(services.jobs, user_id=user_id, turn_id=t) for t in turn_ids]
    )
    task = asyncio.create_task(_reap(services, thread_id, [j.id for j in jobs]))
    _reapers.add(task)
    task.add_done_callback(_reapers.discard)
    return ThreadDeleted(thread_id=thread_id, jobs=[job_out(j) for j in jobs])


async def _reap(services: AppServices, thread_id: str, job_ids: list[str]) -> None:
    """Delete the thread's row once its turns' jobs are done and no turn is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REAP_WITHIN_S

    def pending() -> bool:
        states = [job_records.get(services.engine, j) for j in job_ids]
        return any(j is not None and j.status in ("queued", "running") for j in states)

    def remove() -> None:
        with services.store.session() as session:
            if session.exec(select(Turn.id).where(Turn.thread_id == thread_id)).first():
                return  # a turn is left (a failed job): keep the row, it holds no text
            thread = session.get(Thread, thread_id)
            if thread is not None:
                session.delete(thread)
                session.commit()

    try:
        while await asyncio.to_thread(pending):
            if loop.time() > deadline:
                return
            await asyncio.sleep(REAP_POLL_S)
        await asyncio.to_thread(remove)
    except Exception:  # the row holds no text; a failure here must not go unseen
        log.exception("could not remove the row of deleted thread %s", thread_id)


@router.get("/v1/users/{user_id}/turns/{turn_id}", response_model=TurnLocated)
async def get_turn(user_id: ScopedUserId, turn_id: TurnId, services: ServicesDep) -> TurnLocated:
    """One of the user's turns and its thread (where a memory's source link leads)."""

    def work() -> TurnLocated:
        with services.store.session() as session:
            turn = session.get(Turn, turn_id) if ID_PATTERN.fullmatch(turn_id) else None
            if turn is None or turn.user_id != user_id:
                raise APIError(
                    404,
                    f"no turn with id {turn_id!r} for this user",
                    type="not_found_error",
                    param="turn_id",
                )
            rating = session.exec(
                select(Feedback.rating)
                .where(Feedback.turn_id == turn_id)
                .order_by(col(Feedback.created_at).desc())
            ).first()
            return TurnLocated(thread_id=turn.thread_id, turn=_turn_out(turn, rating))

    return await asyncio.to_thread(work)


@router.get("/v1/users/{user_id}/turns/{turn_id}/why", response_model=WhyOut)
async def why(user_id: ScopedUserId, turn_id: TurnId, services: ServicesDep) -> WhyOut:
    """What a reply was built from: the prompt as sent, memories quoted, route, versions.

    404 for anything but one of the user's assistant turns.
    """

    def work() -> WhyOut:
        with services.store.session() as session:
            turn = session.get(Turn, turn_id) if ID_PATTERN.fullmatch(turn_id) else None
            if turn is None or turn.user_id != user_id or turn.role != "assistant":
                raise APIError(
                    404,
                    f"no assistant turn with id {turn_id!r} for this user",
                    type="not_found_error",
                    param="turn_id",
                )
            stored = pairs.prompt_of(session, turn_id)
            messages = [dict(m) for m in stored.messages] if stored is not None else []
            system = next((m["content"] for m in messages if m.get("role") == "system"), None)
            kind, _, adapter = (turn.model_target or "").partition(":")
            return WhyOut(
                turn_id=turn.id,
                thread_id=turn.thread_id,
                reply_to_id=turn.reply_to_id,
                target=turn.model_target,
                route_kind=kind or None,
                adapter=adapter or None,
                prompt_version=turn.prompt_version,
                prompt_versions=dict(turn.prompt_versions or {}),
                system_prompt=system,
                messages=messages,
                memories=_quoted(session, user_id, messages),
                experiments=_arms(session, turn_id),
                prompt_tokens=turn.prompt_tokens,
                completion_tokens=turn.completion_tokens,
                latency_ms=turn.latency_ms,
            )

    return await asyncio.to_thread(work)


def _quoted(session: Session, user_id: str, messages: list[dict[str, str]]) -> list[WhyMemory]:
    """The user's memories the system message quotes, each with its source turns."""
    if not any(m.get("role") == "system" for m in messages):
        return []
    rows = session.exec(select(Memory.id, Memory.text).where(Memory.user_id == user_id)).all()
    ids = quoting_memories(messages, [(mid, text) for mid, text in rows])
    if not ids:
        return []
    memories = session.exec(select(Memory).where(col(Memory.id).in_(ids))).all()
    sources = session.exec(select(MemorySource).where(col(MemorySource.memory_id).in_(ids))).all()
    turn_ids = list({s.turn_id for s in sources})
    turns = {
        t.id: t
        for t in session.exec(
            select(Turn).where(Turn.user_id == user_id, col(Turn.id).in_(turn_ids))
        ).all()
    }
    out = []
    for m in sorted(memories, key=lambda m: ids.index(m.id)):
        found = []
        for s in sources:
            if s.memory_id != m.id:
                continue
            t = turns.get(s.turn_id)
            found.append(
                SourceTurn(
                    turn_id=s.turn_id,
                    external_id=s.external_id,
                    thread_id=t.thread_id if t else None,
                    role=t.role if t else None,
                    content=t.content if t else None,
                )
            )
        out.append(WhyMemory(id=m.id, kind=m.kind, text=m.text, sources=found))
    return out


def _arms(session: Session, turn_id: str) -> list[WhyArm]:
    rows = session.exec(
        select(ExperimentExposure, Experiment.name)
        .join(Experiment, col(Experiment.id) == col(ExperimentExposure.experiment_id))
        .where(ExperimentExposure.turn_id == turn_id)
    ).all()
    return [
        WhyArm(experiment_id=e.experiment_id, name=name, arm=e.arm, status=e.status)
        for e, name in rows
    ]
