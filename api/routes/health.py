"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.admission import readiness
from api.auth import AdminDep, ServicesDep

router = APIRouter()


@router.get("/healthz")
async def healthz(services: ServicesDep) -> dict[str, str]:
    """Liveness; needs no key. Reads nothing that waits (no database, no queue)."""
    return {"status": "ok", "backend": services.backend.name, "model": services.backend.model_id}


@router.get(
    "/readyz",
    responses={503: {"description": "Saturated (the turn queue is full) or no backend."}},
)
async def readyz(request: Request) -> Any:
    """Readiness for traffic; needs no key. 503 while saturated or the backend is down.

    The body says why: ``ready``, ``running`` and ``queued`` turns and their bounds,
    ``saturated``, ``backend_available`` and a ``reason`` when not ready.
    """
    ready, body = await readiness(request.app)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(_: AdminDep, services: ServicesDep) -> Response:
    """Prometheus metrics (admin key)."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
