"""Training routes: writing samples, adapters (list, promote, roll back), training jobs.

Validation errors here answer 422, as on the other Attune-specific routes. The work is in
``adapters`` (registry, overview) and ``workers.training`` (one job per owner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from adapters import registry
from adapters.dataset_sources import add_samples
from adapters.jobs import NotEnoughData
from adapters.overview import UserAdapters, adapter_view, user_adapters
from adapters.records import AdapterRecord
from api.auth import ScopedUserId, ServicesDep
from api.errors import APIError
from api.protocol import ID_PATTERN, Text
from api.protocol_workers import JobOut, job_out
from api.routes.memories import Route422
from graph.routing import AUTO_MODEL, choose_route
from workers.training import TrainingBusy, submit_training

MAX_SAMPLES = 200
MAX_SAMPLE_CHARS = 20_000

router = APIRouter(route_class=Route422)


class SampleIn(BaseModel):
    """One writing sample."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[Text, Field(min_length=1, max_length=MAX_SAMPLE_CHARS)]


class SamplesUpload(BaseModel):
    """``POST /v1/users/{id}/samples``."""

    model_config = ConfigDict(extra="forbid")

    samples: Annotated[list[SampleIn], Field(min_length=1, max_length=MAX_SAMPLES)]


class SamplesAdded(BaseModel):
    """What an upload stored."""

    added: int
    """Samples stored by this call."""
    skipped: int
    """Samples left out because the user had already uploaded the same text."""
    ids: list[str]
    """The new samples' ids, in upload order."""


@router.post("/v1/users/{user_id}/samples", response_model=SamplesAdded, status_code=201)
async def upload_samples(
    body: SamplesUpload, user_id: ScopedUserId, services: ServicesDep
) -> SamplesAdded:
    """Store writing samples; they join the user's next SFT dataset, scrubbed of PII."""
    texts = [s.text for s in body.samples]

    def work() -> list[str]:
        with services.store.session() as session:
            added = add_samples(session, user_id=user_id, texts=texts)
            ids = [s.id for s in added]
            session.commit()
        return ids

    ids = await asyncio.to_thread(work)
    return SamplesAdded(added=len(ids), skipped=len(texts) - len(ids), ids=ids)


class DatasetOut(BaseModel):
    """The dataset snapshot an adapter was trained on."""

    id: str
    version: int
    content_hash: str
    sft_count: int
    dpo_count: int
    size_bytes: int
    created_at: datetime


class AdapterOut(BaseModel):
    """One adapter version: status, gate verdict and metrics, lineage, dataset."""

    id: str
    name: str
    owner_kind: Literal["user", "group"]
    owner_id: str
    version: int
    kind: str
    base_model: str
    status: Literal["candidate", "promoted", "rejected", "retired"]
    status_reason: str | None
    gate_passed: bool | None
    gate_reasons: list[str]
    metrics: dict[str, Any]
    hparams: dict[str, Any]
    parent_id: str | None
    """The owner's adapter that was promoted when this one was trained."""
    dataset: DatasetOut | None
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None


class Serving(BaseModel):
    """What answers this user's turns now (``model: attune``)."""

    kind: Literal["user", "group", "base"]
    adapter: str | None
    adapter_id: str | None
    reason: str


class AdapterList(BaseModel):
    """``GET /v1/users/{id}/adapters``: the user's adapters, their group's, and the route."""

    user_id: str
    group_id: str | None
    serving: Serving
    data: list[AdapterOut]
    """The user's adapters, newest version first."""
    group: list[AdapterOut]
    """Their group's adapters, newest version first."""


class TrainRequest(BaseModel):
    """``POST /v1/users/{id}/train``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sft", "dpo", "auto"] = "auto"
    """``auto``: DPO when there are enough preference pairs, else SFT."""
    max_steps: Annotated[int | None, Field(ge=1, le=100_000)] = None


def _listing(view: UserAdapters, has_adapter: Any) -> AdapterList:
    route = choose_route(
        requested_model=AUTO_MODEL,
        user_adapter=view.user_adapter,
        group_adapter=view.group_adapter,
        is_available=has_adapter,
    )
    serving_record = view.by_name(route["adapter"])

    def out(records: list[Any]) -> list[AdapterOut]:
        return [
            AdapterOut.model_validate(
                adapter_view(r, view.snapshots.get(r.dataset_snapshot_id or ""))
            )
            for r in records
        ]

    return AdapterList(
        user_id=view.user_id,
        group_id=view.group_id,
        serving=Serving(
            kind=route["kind"],
            adapter=route["adapter"],
            adapter_id=serving_record.id if serving_record else None,
            reason=route["reason"],
        ),
        data=out(view.adapters),
        group=out(view.group_adapters),
    )


def _adapters_dir(services: Any) -> Path:
    path: Path | None = services.settings.model.adapters_dir
    assert path is not None  # the settings derive it from the data directory
    return path


def _view(services: Any, user_id: str) -> UserAdapters:
    with services.store.session() as session:
        view = user_adapters(session, user_id=user_id)
    if view is None:  # deleted between the key check and now
        raise APIError(404, f"no user with id {user_id!r}", type="not_found_error")
    return view


async def _answer(services: Any, work: Callable[[], UserAdapters]) -> AdapterList:
    """Run ``work`` off the event loop, then list the user's adapters as it left them."""
    view = await asyncio.to_thread(work)
    return await asyncio.to_thread(_listing, view, services.backend.has_adapter)


@router.get("/v1/users/{user_id}/adapters", response_model=AdapterList)
async def list_user_adapters(user_id: ScopedUserId, services: ServicesDep) -> AdapterList:
    """The user's and their group's adapter versions, and which one serves the user now."""
    return await _answer(services, lambda: _view(services, user_id))


@router.post("/v1/users/{user_id}/adapters/{adapter_id}/promote", response_model=AdapterList)
async def promote_adapter(
    user_id: ScopedUserId, adapter_id: str, services: ServicesDep
) -> AdapterList:
    """Serve the user with one of their adapters (a candidate or a retired one) from now on.

    The serving backend loads it before the user is pointed at it. 409 when the adapter
    cannot be promoted (rejected, already promoted, files gone, no adapter in them).
    """
    adapters_dir = _adapters_dir(services)
    not_found = APIError(
        404, f"no adapter with id {adapter_id!r}", type="not_found_error", param="adapter_id"
    )

    def work() -> UserAdapters:
        with services.store.session() as session:
            record = (
                session.get(AdapterRecord, adapter_id) if ID_PATTERN.fullmatch(adapter_id) else None
            )
            if record is None or (record.owner_kind, record.owner_id) != ("user", user_id):
                raise not_found
            try:
                registry.promote(
                    session,
                    adapter_id=record.id,
                    adapters_dir=adapters_dir,
                    publisher=services.core,
                    reason="promoted by hand",
                )
            except registry.RegistryError as exc:
                raise APIError(409, str(exc), type="conflict_error") from exc
            session.commit()
        return _view(services, user_id)

    return await _answer(services, work)


@router.post("/v1/users/{user_id}/adapters/rollback", response_model=AdapterList)
async def rollback_adapter(user_id: ScopedUserId, services: ServicesDep) -> AdapterList:
    """Retire the user's promoted adapter and bring back the one it replaced.

    The one brought back is published on the serving backend, the retired one released.
    With none to bring back the user is served by their group's adapter or the base model.
    409 when the user has no promoted adapter.
    """
    adapters_dir = _adapters_dir(services)

    def work() -> UserAdapters:
        with services.store.session() as session:
            try:
                registry.rollback(
                    session,
                    owner_kind="user",
                    owner_id=user_id,
                    adapters_dir=adapters_dir,
                    publisher=services.core,
                )
            except registry.RegistryError as exc:
                raise APIError(409, str(exc), type="conflict_error") from exc
            session.commit()
        return _view(services, user_id)

    return await _answer(services, work)


@router.post("/v1/users/{user_id}/train", response_model=JobOut, status_code=202)
async def train(body: TrainRequest, user_id: ScopedUserId, services: ServicesDep) -> JobOut:
    """Queue a training job for the user; follow it with ``GET /v1/jobs/{id}``.

    409 when one is already queued or running for the user; 422 when there is too little
    data for the kind asked for.
    """

    def work() -> Any:
        return submit_training(
            services.jobs,
            services.settings.training,
            owner_kind="user",
            owner_id=user_id,
            kind=body.kind,
            max_steps=body.max_steps,
        )

    try:
        job = await asyncio.to_thread(work)
    except TrainingBusy as exc:
        raise APIError(409, str(exc), type="conflict_error") from exc
    except NotEnoughData as exc:
        raise APIError(422, str(exc), param="kind") from exc
    return job_out(job)
