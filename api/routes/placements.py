"""``GET /v1/admin/placements``: which vLLM replica holds which adapter (admin)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from adapters.placements import list_placements
from api.auth import AdminDep, ServicesDep

router = APIRouter()


class PlacementOut(BaseModel):
    """One adapter on one replica, as last recorded by any Attune process."""

    adapter: str
    replica: str
    state: Literal["loaded", "evicted", "failed"]
    path: str
    updated_at: datetime


class PlacementList(BaseModel):
    """The placement table, by adapter then replica."""

    backend: str = Field(description="The serving backend of this process.")
    placements: list[PlacementOut]


@router.get("/v1/admin/placements", response_model=PlacementList)
async def placements(
    _: AdminDep,
    services: ServicesDep,
    adapter: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this adapter.")
    ] = None,
) -> PlacementList:
    """The shared placement table (empty unless the vllm backend has published)."""
    rows = await asyncio.to_thread(list_placements, services.engine, adapter=adapter)
    return PlacementList(
        backend=services.backend.name,
        placements=[PlacementOut.model_validate(r, from_attributes=True) for r in rows],
    )
