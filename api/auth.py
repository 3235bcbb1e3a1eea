"""Bearer-key authentication and per-user scoping.

The user id always comes from the key. A user key on another user's routes gets 404, the
same answer as for a user that does not exist, so keys cannot probe for users.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import APIError
from api.protocol import ID_PATTERN
from api.services import AppServices
from memory.records import repo
from memory.records.repo import Principal

_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> AppServices:
    """The app's services."""
    services: AppServices = request.app.state.services
    return services


ServicesDep = Annotated[AppServices, Depends(get_services)]


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the ``Authorization: Bearer`` key, or answer 401."""
    if credentials is None or not credentials.credentials:
        parts = request.headers.get("authorization", "").split(None, 1)
        if not parts:
            problem = "missing API key"
        elif parts[0].lower() == "bearer":
            problem = "the Authorization header has no key after 'Bearer'"
        elif len(parts) == 2:
            problem = f"the Authorization header uses the {parts[0][:20]!r} scheme, not 'Bearer'"
        else:
            problem = "the Authorization header names no scheme"
        raise APIError(
            401,
            f"{problem}: send 'Authorization: Bearer <key>' (create a key with "
            "'attune users create NAME')",
            type="authentication_error",
        )
    admin = services.settings.admin_key
    admin_key = admin.get_secret_value() if admin is not None else None

    def lookup() -> Principal | None:
        with services.store.session() as session:
            return repo.principal_for_key(session, credentials.credentials, admin_key=admin_key)

    principal = await asyncio.to_thread(lookup)
    if principal is None:
        raise APIError(401, "invalid or revoked API key", type="authentication_error")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """Only the admin key passes."""
    if not principal.is_admin:
        raise APIError(403, "this route needs the admin key", type="permission_error")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


async def require_user(principal: PrincipalDep) -> str:
    """The id of the user behind a user key (chat needs one)."""
    if principal.user_id is None:
        raise APIError(
            403,
            "the admin key belongs to no user; chat with a user's key",
            type="permission_error",
        )
    return principal.user_id


CurrentUserId = Annotated[str, Depends(require_user)]


async def scoped_user_id(user_id: str, principal: PrincipalDep, services: ServicesDep) -> str:
    """The ``{user_id}`` of the path, if the key may reach it; else 404."""
    not_found = APIError(
        404, f"no user with id {user_id!r}", type="not_found_error", param="user_id"
    )
    if not principal.is_admin and principal.user_id != user_id:
        raise not_found
    if not ID_PATTERN.fullmatch(user_id):  # not an id: no need to ask the database
        raise not_found

    def exists() -> bool:
        with services.store.session() as session:
            return repo.get_user(session, user_id) is not None

    if not await asyncio.to_thread(exists):
        raise not_found
    return user_id


ScopedUserId = Annotated[str, Depends(scoped_user_id)]
