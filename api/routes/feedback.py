"""Feedback on replies, and the preference pairs built from it.

Validation errors here answer 422 (Attune's own routes, not OpenAI's).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import CurrentUserId, ScopedUserId, ServicesDep
from api.errors import APIError
from api.protocol import MAX_INT
from api.protocol_workers import FeedbackIn, FeedbackOut, PairPage, job_out, pair_out
from api.routes.memories import Route422
from memory import pairs
from memory.records.tables import Feedback, Turn
from workers import submit

router = APIRouter(route_class=Route422)


@router.post("/v1/feedback", response_model=FeedbackOut, status_code=201)
async def post_feedback(
    body: FeedbackIn, user_id: CurrentUserId, services: ServicesDep
) -> FeedbackOut:
    """Rate one of your own assistant replies; pairs are built in the background.

    Another user's turn, a user turn and an unknown id all answer 404.
    """

    def work() -> FeedbackOut:
        with services.store.session() as session:
            turn = session.get(Turn, body.turn_id)
            if turn is None or turn.user_id != user_id or turn.role != "assistant":
                raise APIError(
                    404,
                    f"no assistant turn with id {body.turn_id!r} for this user",
                    type="not_found_error",
                    param="turn_id",
                )
            fb = Feedback(
                user_id=user_id,
                turn_id=turn.id,
                rating=body.rating,
                edited_text=body.edited_text,
                comment=body.comment,
            )
            session.add(fb)
            session.commit()
        job = submit.build_pairs(
            services.jobs, user_id=user_id, turn_id=fb.turn_id, feedback_id=fb.id
        )
        return FeedbackOut(
            id=fb.id,
            turn_id=fb.turn_id,
            rating=fb.rating,
            edited_text=fb.edited_text,
            comment=fb.comment,
            created_at=fb.created_at,
            job=job_out(job),
        )

    return await asyncio.to_thread(work)


@router.get("/v1/users/{user_id}/preference-pairs", response_model=PairPage)
async def list_preference_pairs(
    user_id: ScopedUserId,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> PairPage:
    """The user's preference pairs, newest first."""

    def work() -> PairPage:
        with services.store.session() as session:
            rows, total = pairs.list_pairs(session, user_id=user_id, limit=limit, offset=offset)
            return PairPage(data=[pair_out(p) for p in rows], total=total)

    return await asyncio.to_thread(work)
