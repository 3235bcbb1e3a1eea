"""``GET /v1/admin/audit``: the audit log, newest first, paged (admin)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import AdminDep, ServicesDep
from memory.records import audit

router = APIRouter()


class AuditOut(BaseModel):
    """One audited action: who, what, when (ids only)."""

    id: int
    at: datetime
    actor: str = Field(description="admin, user or anonymous (a refused key).")
    user_id: str | None = Field(description="The acting key's user; null for the admin.")
    key_id: str | None = Field(description="The acting stored key; null for a configured one.")
    method: str
    route: str = Field(description="The route template, such as /v1/users/{user_id}.")
    target: dict[str, Any] = Field(description="The ids of the path.")
    status: int
    request_id: str | None


class AuditPage(BaseModel):
    """A page of the audit log, the newest entry first."""

    data: list[AuditOut]
    total: int
    limit: int
    offset: int
    next_before: int | None = Field(
        description="Pass as ``before`` for the next page (stable while the log grows); "
        "null on the last page."
    )


@router.get("/v1/admin/audit", response_model=AuditPage)
async def list_audit(
    _: AdminDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only entries older than this id.")
    ] = None,
) -> AuditPage:
    """Admin actions, deletions and adapter promotions or rollbacks, newest first."""
    entries, total = await asyncio.to_thread(
        audit.page, services.engine, limit=limit, offset=offset, before=before
    )
    more = offset + len(entries) < total
    return AuditPage(
        data=[AuditOut.model_validate(e, from_attributes=True) for e in entries],
        total=total,
        limit=limit,
        offset=offset,
        next_before=entries[-1].id if more and entries else None,
    )
