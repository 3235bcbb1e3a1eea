"""Persona routes: the profile, its history and versions, and the learned instruction block.

Validation errors here answer 422 (Attune's own routes, not OpenAI's).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlmodel import Session

from api.auth import ScopedUserId, ServicesDep
from api.errors import APIError
from api.protocol import MAX_INT
from api.protocol_profile import (
    BlockList,
    BlockOut,
    InstructionOut,
    ProfileChangeOut,
    ProfileHistory,
    ProfileOut,
    ProfilePatch,
    ProfileVersionOut,
    RestoreRequest,
)
from api.routes.memories import Route422
from memory.persona import procedural
from memory.persona import profile as profiles
from memory.persona.document import FORMATTING_KEYS, apply_updates, normalize
from memory.persona.instructions import Op, ProfileUpdate
from memory.records import repo
from memory.records.tables import InstructionBlock, Profile, ProfileVersion

router = APIRouter(route_class=Route422)


def profile_out(profile: Profile) -> ProfileOut:
    """The API form of a stored profile."""
    data = normalize(profile.data)
    return ProfileOut(
        user_id=profile.user_id,
        version=profile.version,
        updated_at=profile.updated_at if profile.version else None,
        preferred_name=data.get("preferred_name"),
        language=data.get("language"),
        tone=data.get("tone"),
        formality=data.get("formality"),
        verbosity=data.get("verbosity"),
        formatting=data.get("formatting", {}),
        instructions=[InstructionOut(**r) for r in data.get("instructions", [])],
        interests=data.get("interests", []),
        style=data.get("style", {}),
    )


@router.get("/v1/users/{user_id}/profile", response_model=ProfileOut)
async def get_profile(user_id: ScopedUserId, services: ServicesDep) -> ProfileOut:
    """The user's persona profile (version 0 and empty until something sets it)."""
    return await services.store.run(lambda s: profile_out(repo.get_profile(s, user_id=user_id)))


def patch_to_data(current: dict[str, Any], body: ProfilePatch) -> dict[str, Any]:
    """The profile document ``body`` asks for, given the ``current`` one.

    Raises:
        APIError: 404 when an instruction id to remove is not in the profile.
    """
    given = body.model_fields_set
    updates: list[ProfileUpdate] = []
    for field in ("preferred_name", "language", "tone", "formality", "verbosity"):
        if field in given:
            value = getattr(body, field)
            op: Op = "unset" if value is None else "set"
            updates.append(ProfileUpdate(field, op, value, "edited"))
    if body.formatting is not None:
        for key in FORMATTING_KEYS:
            if key in body.formatting.model_fields_set:
                value = getattr(body.formatting, key)
                op = "unset" if value is None else "set"
                updates.append(ProfileUpdate(f"formatting.{key}", op, value, "edited"))
    elif "formatting" in given:
        updates += [
            ProfileUpdate(f"formatting.{k}", "unset", None, "edited") for k in FORMATTING_KEYS
        ]
    if body.instructions is not None:
        known = {r["id"] for r in normalize(current).get("instructions", [])}
        for rule_id in body.instructions.remove:
            if rule_id not in known:
                raise APIError(
                    404,
                    f"the profile has no instruction with id {rule_id!r}; GET the profile "
                    "for the ids it has",
                    type="not_found_error",
                    param="instructions.remove",
                )
            updates.append(ProfileUpdate("instructions", "remove", rule_id, "edited"))
        updates += [
            ProfileUpdate("instructions", "add", t, "edited") for t in body.instructions.add
        ]
    data = apply_updates(current, updates)
    if "interests" in given:
        data["interests"] = list(dict.fromkeys(body.interests or []))
        if not data["interests"]:
            del data["interests"]
    return data


@router.patch("/v1/users/{user_id}/profile", response_model=ProfileOut)
async def patch_profile(
    body: ProfilePatch, user_id: ScopedUserId, services: ServicesDep
) -> ProfileOut:
    """Edit or remove any field or instruction; the change is logged as a new version."""

    def work(session: Session) -> ProfileOut:
        current = repo.get_profile(session, user_id=user_id).data
        data = patch_to_data(current, body)
        reason = body.reason or "edited through the API"
        return profile_out(profiles.replace(session, user_id=user_id, data=data, reason=reason))

    return await services.store.run(work)


@router.get("/v1/users/{user_id}/profile/history", response_model=ProfileHistory)
async def profile_history(
    user_id: ScopedUserId,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
) -> ProfileHistory:
    """Every change to the profile, newest first: what changed, why, from which turn."""

    def work(session: Session) -> ProfileHistory:
        rows = profiles.history(
            session, user_id=user_id, limit=limit, before_version=before_version
        )
        return ProfileHistory(
            changes=[ProfileChangeOut.model_validate(r.model_dump()) for r in rows]
        )

    return await services.store.run(work)


@router.get("/v1/users/{user_id}/profile/versions/{version}", response_model=ProfileVersionOut)
async def profile_version(
    version: Annotated[int, Path(ge=0, le=MAX_INT)], user_id: ScopedUserId, services: ServicesDep
) -> ProfileVersionOut:
    """The whole profile as it was at ``version``."""

    def work(session: Session) -> ProfileVersionOut:
        row = session.get(ProfileVersion, (user_id, version))
        if row is None:
            raise APIError(
                404,
                f"the profile has no version {version}; see GET .../profile/history",
                type="not_found_error",
            )
        return ProfileVersionOut(
            version=row.version, reason=row.reason, created_at=row.created_at, profile=row.data
        )

    return await services.store.run(work)


@router.post("/v1/users/{user_id}/profile/restore", response_model=ProfileOut)
async def restore_profile(
    body: RestoreRequest, user_id: ScopedUserId, services: ServicesDep
) -> ProfileOut:
    """Make an earlier version current again (recorded as a new version; 0 = empty)."""

    def work(session: Session) -> ProfileOut:
        try:
            return profile_out(profiles.restore(session, user_id=user_id, version=body.version))
        except profiles.ProfileVersionNotFoundError as exc:
            raise APIError(404, str(exc), type="not_found_error", param="version") from exc

    return await services.store.run(work)


def _blocks(session: Session, user_id: str) -> BlockList:
    rows = procedural.list_blocks(session, user_id=user_id)
    active = next((b.id for b in rows if b.status == "active"), None)
    return BlockList(
        active_id=active, blocks=[BlockOut.model_validate(b.model_dump()) for b in rows]
    )


@router.get("/v1/users/{user_id}/instruction-blocks", response_model=BlockList)
async def list_blocks(user_id: ScopedUserId, services: ServicesDep) -> BlockList:
    """Every version of the user's learned instruction block, newest first."""
    return await services.store.run(lambda s: _blocks(s, user_id))


@router.post("/v1/users/{user_id}/instruction-blocks/rollback", response_model=BlockList)
async def rollback_block(user_id: ScopedUserId, services: ServicesDep) -> BlockList:
    """Retire the active block and restore the one it replaced (if any)."""

    def work(session: Session) -> BlockList:
        try:
            procedural.rollback(session, user_id=user_id)
        except procedural.NoBlockError as exc:
            raise APIError(409, str(exc), type="conflict_error") from exc
        return _blocks(session, user_id)

    return await services.store.run(work)


@router.post("/v1/users/{user_id}/instruction-blocks/{block_id}/activate", response_model=BlockList)
async def activate_block(block_id: str, user_id: ScopedUserId, services: ServicesDep) -> BlockList:
    """Make any kept version the active one (a manual override of the gate)."""

    def work(session: Session) -> BlockList:
        block = session.get(InstructionBlock, block_id)
        if block is None or block.user_id != user_id:
            raise APIError(
                404, f"no instruction block with id {block_id!r}", type="not_found_error"
            )
        procedural.activate(
            session, user_id=user_id, block_id=block_id, reason="activated through the API"
        )
        return _blocks(session, user_id)

    return await services.store.run(work)
