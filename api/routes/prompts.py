"""Prompt templates as prompt engineers see them: names, versions, the active one, sources."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import PrincipalDep, ServicesDep
from api.errors import APIError
from api.protocol_profile import PromptInfo, PromptList, PromptSource
from api.routes.memories import Route422
from graph.prompts import PromptNotFoundError

router = APIRouter(route_class=Route422)


def _active(services: ServicesDep, name: str) -> str | None:
    return services.settings.graph.prompt_version if name == "system" else None


@router.get("/v1/prompts", response_model=PromptList)
async def list_prompts(_: PrincipalDep, services: ServicesDep) -> PromptList:
    """Every prompt template, its versions (oldest first) and the version in use."""
    lib = services.prompts
    return PromptList(
        data=[
            PromptInfo(name=n, versions=lib.versions(n), active=_active(services, n))
            for n in lib.names()
        ]
    )


@router.get("/v1/prompts/{name}/{version}", response_model=PromptSource)
async def show_prompt(
    name: str, version: str, _: PrincipalDep, services: ServicesDep
) -> PromptSource:
    """One version's template text and the variables it uses."""
    lib = services.prompts
    try:
        template = lib.source(name, version)
        variables = sorted(lib.variables(name, version))
    except PromptNotFoundError as exc:
        raise APIError(
            404, f"{exc.args[0]}; GET /v1/prompts lists them", type="not_found_error"
        ) from exc
    return PromptSource(
        name=name,
        version=version,
        active=_active(services, name) == version,
        template=template,
        variables=variables,
    )
