"""``GET /v1/jobs/{id}``: follow a background job."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.auth import PrincipalDep, ServicesDep
from api.errors import APIError
from api.protocol import ID_PATTERN
from api.protocol_workers import JobOut, job_out
from memory.records import jobs

router = APIRouter()


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: str, principal: PrincipalDep, services: ServicesDep) -> JobOut:
    """A job: the admin sees every job, a user only their own (404 for the rest)."""
    job = (
        await asyncio.to_thread(jobs.get, services.engine, job_id)
        if ID_PATTERN.fullmatch(job_id)
        else None
    )
    if job is None or not (principal.is_admin or job.user_id == principal.user_id):
        raise APIError(404, f"no job with id {job_id!r}", type="not_found_error", param="job_id")
    return job_out(job)
