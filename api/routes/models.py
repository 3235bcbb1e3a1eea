"""``GET /v1/models``: the logical models clients may name."""

from __future__ import annotations

import time

from fastapi import APIRouter

from api.auth import PrincipalDep, ServicesDep
from api.protocol import ModelCard, ModelList
from graph.routing import AUTO_MODEL, BASE_MODEL

router = APIRouter()
_STARTED = int(time.time())


@router.get("/v1/models", response_model=ModelList)
async def list_models(_: PrincipalDep, services: ServicesDep) -> ModelList:
    """``attune`` routes to the user's adapter, their group's or the base model."""
    base = services.backend.model_id
    return ModelList(
        data=[
            ModelCard(
                id=AUTO_MODEL,
                created=_STARTED,
                description=f"routes to your adapter, your group's, or the base model ({base})",
            ),
            ModelCard(
                id=BASE_MODEL, created=_STARTED, description=f"always the base model ({base})"
            ),
        ]
    )
