"""Persona profiles: applying updates with a recorded history of every change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from memory.instructions import ProfileUpdate
from memory.records import Profile, ProfileChange, utcnow


def apply_updates(data: dict[str, Any], updates: Sequence[ProfileUpdate]) -> dict[str, Any]:
    """Return a new profile document with ``updates`` applied (pure)."""
    out = {**data, "instructions": list(data.get("instructions", []))}
    for update in updates:
        if update.op == "set":
            out[update.field] = update.value
        elif update.op == "unset":
            out.pop(update.field, None)
        elif update.op == "add" and update.value not in out[update.field]:
            out[update.field].append(update.value)
    if not out["instructions"]:
        del out["instructions"]
    return out


def save_updates(
    session: Session,
    *,
    user_id: str,
    updates: Sequence[ProfileUpdate],
    source_turn_id: str | None,
) -> Profile:
    """Apply ``updates`` to the stored profile, bump its version and log each change."""
    profile = session.get(Profile, user_id)
    if profile is None:
        profile = Profile(user_id=user_id, data={}, version=0)
        session.add(profile)
    before = dict(profile.data)
    after = apply_updates(before, updates)
    if after == before:
        return profile
    profile.version += 1
    profile.data = after
    profile.updated_at = utcnow()
    for update in updates:
        session.add(
            ProfileChange(
                user_id=user_id,
                version=profile.version,
                field=update.field,
                old_value=before.get(update.field),
                new_value=after.get(update.field),
                reason=update.reason,
                source_turn_id=source_turn_id,
            )
        )
    session.flush()
    return profile
