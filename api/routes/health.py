"""Liveness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import AdminDep, ServicesDep

router = APIRouter()


@router.get("/healthz")
async def healthz(services: ServicesDep) -> dict[str, str]:
    """Liveness; needs no key."""
    return {"status": "ok", "backend": services.backend.name, "model": services.backend.model_id}


@router.get("/metrics")
async def metrics(_: AdminDep, services: ServicesDep) -> Response:
    """Prometheus metrics (admin key)."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
