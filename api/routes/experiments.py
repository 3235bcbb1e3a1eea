"""``/v1/experiments``: A/B tests on live traffic (admin): create, list, show, stop."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api import experiments as service
from api.auth import AdminDep, ServicesDep
from api.errors import APIError
from api.protocol import Text
from api.routes.memories import Route422
from evals.experiment_stats import ArmReport
from memory.records import experiments as records
from memory.records.tables import utcnow

router = APIRouter(tags=["experiments"], route_class=Route422)

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=100, description="The experiment's id or name.")
]


class StopRequest(BaseModel):
    """Why the experiment is stopped."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="stopped by an admin", min_length=1, max_length=500)


class ExperimentOut(BaseModel):
    """An experiment and its state."""

    id: str
    name: str
    state: str = Field(description="scheduled, running, ended or stopped.")
    control: str
    arms: list[dict[str, Any]]
    eligibility: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None
    stopped_arms: dict[str, Any] = Field(description="Arms stopped alone: when and why.")


class EstimateOut(BaseModel):
    """A metric of one arm, with its 95% interval; against control for the other arms."""

    value: float | None
    ci: tuple[float, float] | None
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    p_value: float | None = None


class ArmMetricsOut(BaseModel):
    """One arm's counts and metrics."""

    arm: str
    turns: int
    users: int
    failed: int
    recorded: int
    metrics: dict[str, EstimateOut]


class ExperimentDetail(ExperimentOut):
    """An experiment with per-arm metrics (cluster bootstrap over users)."""

    metrics: list[ArmMetricsOut]


def experiment_out(row: records.Experiment) -> ExperimentOut:
    """The wire form of a stored experiment."""
    fields = row.model_dump(exclude={"stopped_arms"})
    return ExperimentOut(**fields, state=row.state(utcnow()), stopped_arms=row.stopped_arms)


def metrics_out(reports: list[ArmReport]) -> list[ArmMetricsOut]:
    """The wire form of per-arm reports."""
    return [
        ArmMetricsOut(
            arm=r.arm,
            turns=r.turns,
            users=r.users,
            failed=r.failed,
            recorded=r.recorded,
            metrics={
                k: EstimateOut(
                    value=e.value, ci=e.ci, diff=e.diff, diff_ci=e.diff_ci, p_value=e.p_value
                )
                for k, e in r.metrics.items()
            },
        )
        for r in reports
    ]


def _found(services: ServicesDep, experiment_id: str) -> records.Experiment:
    row = records.get(services.engine, experiment_id)
    if row is None:
        raise APIError(
            404, f"no experiment {experiment_id!r}", type="not_found_error", param="experiment_id"
        )
    return row


@router.post("/v1/experiments", response_model=ExperimentOut, status_code=201)
async def create_experiment(
    body: service.ExperimentCreate, _: AdminDep, services: ServicesDep
) -> ExperimentOut:
    """Start an A/B test: users are split between arms by a hash, sticky for its life."""
    row = await asyncio.to_thread(service.create, services.engine, services.prompts, body)
    services.experiments.invalidate()
    return experiment_out(row)


@router.get("/v1/experiments", response_model=list[ExperimentOut])
async def list_experiments(_: AdminDep, services: ServicesDep) -> list[ExperimentOut]:
    """Every experiment, newest first."""
    rows = await asyncio.to_thread(records.list_experiments, services.engine)
    return [experiment_out(r) for r in rows]


@router.get("/v1/experiments/{experiment_id}", response_model=ExperimentDetail)
async def show_experiment(
    experiment_id: ExperimentId, _: AdminDep, services: ServicesDep
) -> ExperimentDetail:
    """An experiment with its per-arm metrics, intervals and tests against control."""
    row = await asyncio.to_thread(_found, services, experiment_id)
    settings = services.settings.experiments
    reports = await asyncio.to_thread(service.report, services.engine, row, settings)
    return ExperimentDetail(**experiment_out(row).model_dump(), metrics=metrics_out(reports))


@router.post("/v1/experiments/{experiment_id}/stop", response_model=ExperimentOut)
async def stop_experiment(
    experiment_id: ExperimentId,
    _: AdminDep,
    services: ServicesDep,
    body: StopRequest | None = None,
) -> ExperimentOut:
    """Stop now: every user gets the service's own settings from the next turn."""
    row = await asyncio.to_thread(_found, services, experiment_id)
    reason = (body or StopRequest()).reason
    stopped = await asyncio.to_thread(records.stop, services.engine, row.id, reason)
    assert stopped is not None
    services.experiments.invalidate()
    return experiment_out(stopped)
