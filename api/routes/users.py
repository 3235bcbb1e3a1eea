"""User routes: create (admin), delete (admin or the user), prompt preview."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from sqlmodel import select

from api.auth import AdminDep, ScopedUserId, ServicesDep
from api.errors import APIError
from api.protocol import PreviewRequest, PreviewResponse, UserCreate, UserCreated
from api.protocol_workers import JobOut, job_out
from api.routes.chat import check_model, reply_budget, to_chat_messages, turn_errors
from graph.compose import PromptTooLongError
from graph.runner import InvalidTurnError, ThreadNotFoundError, TurnRequest
from graph.state import GenerationParams
from memory import deletion
from memory.records import repo
from memory.records.tables import Thread, UserGroup
from workers import submit

router = APIRouter()


@router.post("/v1/users", response_model=UserCreated, status_code=201)
async def create_user(body: UserCreate, _: AdminDep, services: ServicesDep) -> UserCreated:
    """Create a user and return their API key (shown only now)."""

    def work() -> UserCreated:
        with services.store.session() as session:
            if body.group_id is not None and session.get(UserGroup, body.group_id) is None:
                raise APIError(
                    404,
                    f"group_id {body.group_id!r} names no user group; use one that exists",
                    type="not_found_error",
                    param="group_id",
                )
            user, key = repo.create_user(session, name=body.name, group_id=body.group_id)
            session.commit()
            return UserCreated(id=user.id, name=user.name, api_key=key)

    return await asyncio.to_thread(work)


@router.delete("/v1/users/{user_id}", status_code=202, response_model=JobOut)
async def delete_user(user_id: ScopedUserId, services: ServicesDep) -> JobOut:
    """Delete a user and everything held about them; answers at once with the job.

    Now: their keys stop working and their thread state goes. In a ``delete_user`` job:
    memories (rows, vectors, terms), preference pairs, turns, threads, profile, keys, their
    other jobs and the user. Asking again while it runs answers with the same job.
    """

    def revoke() -> list[str]:
        with services.store.session() as session:
            deletion.revoke_keys(session, user_id=user_id)
            session.commit()
            return list(session.exec(select(Thread.id).where(Thread.user_id == user_id)).all())

    await services.runner.forget_threads(await asyncio.to_thread(revoke))
    services.runner.cancel_user(user_id)  # their running turns stop and record nothing
    job = await asyncio.to_thread(submit.delete_user, services.jobs, user_id=user_id)
    return job_out(job)


@router.post("/v1/users/{user_id}/prompt/preview", response_model=PreviewResponse)
async def preview_prompt(body: PreviewRequest, user_id: ScopedUserId, services: ServicesDep) -> Any:
    """The system prompt, messages, memories and route a turn would use, without generating."""
    check_model(body.model)
    request = TurnRequest(
        messages=to_chat_messages(body.messages, services.settings.server),
        params=GenerationParams(
            model=body.model,
            max_tokens=reply_budget(body.max_tokens, "max_tokens", services),
        ),
        thread_id=body.thread_id,
    )
    try:
        preview = await services.runner.preview(user_id, request)
    except (ThreadNotFoundError, InvalidTurnError, PromptTooLongError) as exc:
        raise turn_errors(exc) from exc
    return PreviewResponse(
        thread_id=preview.thread_id,
        prompt_version=preview.prompt_version,
        system_prompt=preview.system_prompt,
        messages=preview.messages,
        memories=[dict(m) for m in preview.memories],
        route=dict(preview.route),
        prompt_tokens=preview.prompt_tokens,
        profile_updates=preview.profile_updates,
    )
