"""Who a key is, and the admin's lists: users, groups, recent jobs, eval runs.

Validation errors answer 422 (Attune's own routes, not OpenAI's).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlmodel import col, func, select

from api.auth import AdminDep, PrincipalDep, ServicesDep
from api.errors import APIError
from api.protocol import ID_PATTERN
from api.protocol_web import (
    EvalRunList,
    EvalRunRow,
    GroupList,
    GroupRow,
    JobList,
    Me,
    UserList,
    UserRow,
)
from api.protocol_workers import job_out
from api.routes.memories import Route422
from evals import report_html, runs
from memory.records import jobs as job_records
from memory.records import repo
from memory.records.jobs import Job
from memory.records.tables import User, UserGroup

router = APIRouter(route_class=Route422, tags=["admin"])

JobStatus = Literal["queued", "running", "succeeded", "failed"]
RunId = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[a-z0-9_-]+$")]


@router.get("/v1/me", response_model=Me)
async def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    """The key's user (``null`` for the admin key) and whether it is the admin key."""
    if principal.user_id is None:
        return Me(user_id=None, name=None, group_id=None, is_admin=principal.is_admin)
    user_id = principal.user_id

    def load() -> Me:
        with services.store.session() as session:
            user = repo.get_user(session, user_id)
            if user is None:  # deleted since the key was checked
                raise APIError(401, "invalid or revoked API key", type="authentication_error")
            return Me(
                user_id=user.id,
                name=user.name,
                group_id=user.group_id,
                is_admin=principal.is_admin,
            )

    return await asyncio.to_thread(load)


@router.get("/v1/admin/users", response_model=UserList)
async def list_users(
    _: AdminDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> UserList:
    """Users, oldest first, with their group."""

    def load() -> UserList:
        with services.store.session() as session:
            groups = {g.id: g.name for g in session.exec(select(UserGroup)).all()}
            users = session.exec(select(User).order_by(col(User.created_at)).limit(limit)).all()
            return UserList(
                data=[
                    UserRow(
                        id=u.id,
                        name=u.name,
                        group_id=u.group_id,
                        group_name=groups.get(u.group_id or ""),
                        adapter_name=u.adapter_name,
                        created_at=u.created_at,
                    )
                    for u in users
                ]
            )

    return await asyncio.to_thread(load)


@router.get("/v1/admin/groups", response_model=GroupList)
async def list_groups(_: AdminDep, services: ServicesDep) -> GroupList:
    """User groups with their adapter and how many members they have."""

    def load() -> GroupList:
        with services.store.session() as session:
            members = dict(
                session.exec(select(User.group_id, func.count()).group_by(col(User.group_id))).all()
            )
            groups = session.exec(select(UserGroup).order_by(col(UserGroup.created_at))).all()
            return GroupList(
                data=[
                    GroupRow(
                        id=g.id,
                        name=g.name,
                        adapter_name=g.adapter_name,
                        members=int(members.get(g.id, 0)),
                        created_at=g.created_at,
                    )
                    for g in groups
                ]
            )

    return await asyncio.to_thread(load)


@router.get("/v1/admin/jobs", response_model=JobList)
async def list_jobs(
    _: AdminDep,
    services: ServicesDep,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    user_id: Annotated[str | None, Query(max_length=40, pattern=ID_PATTERN.pattern)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    """Recent jobs, newest first (filtered by status, kind or user), and counts by status."""

    def load() -> JobList:
        found = job_records.list_jobs(
            services.engine, user_id=user_id, status=status, kind=kind, limit=limit
        )
        with services.store.session() as session:
            counts = dict(
                session.exec(select(Job.status, func.count()).group_by(col(Job.status))).all()
            )
        return JobList(
            data=[job_out(j) for j in found], counts={k: int(v) for k, v in counts.items()}
        )

    return await asyncio.to_thread(load)


@router.get("/v1/admin/eval-runs", response_model=EvalRunList)
async def list_eval_runs(
    _: AdminDep, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> EvalRunList:
    """Stored eval runs, newest first, with their aggregate figures."""

    def load() -> EvalRunList:
        found = runs.list_runs(runs.runs_dir(services.settings.data_dir))[:limit]
        return EvalRunList(
            data=[
                EvalRunRow(
                    id=r.id,
                    suite=r.suite,
                    dataset=r.dataset,
                    primary=r.primary,
                    aggregates=r.aggregates,
                    cases=len(r.cases),
                    failed=sum(not c.passed for c in r.cases),
                    commit=r.commit,
                    prompts=r.prompts,
                    created_at=r.created_at,
                )
                for r in found
            ]
        )

    return await asyncio.to_thread(load)


@router.get("/v1/admin/eval-runs/{run_id}/report")
async def eval_run_report(run_id: RunId, _: AdminDep, services: ServicesDep) -> Response:
    """One run's HTML report (``attune eval report``), as a download."""

    def render() -> str:
        try:
            run = runs.load(run_id, runs.runs_dir(services.settings.data_dir))
        except runs.RunNotFoundError as exc:
            raise APIError(404, str(exc), type="not_found_error", param="run_id") from exc
        return report_html.render([run])

    html = await asyncio.to_thread(render)
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{run_id}.html"',
            "Content-Security-Policy": "sandbox",
        },
    )
