"""Persona profiles in the database: updates with a recorded history, versions, rollback.

Every change bumps the profile's version, logs one :class:`ProfileChange` per field (what
changed, why, from which turn) and keeps the whole document as a :class:`ProfileVersion`,
so any version can be shown and restored. Restoring is itself a change, never a rewrite
of history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from memory.persona.document import FIELDS, MAX_INTERESTS, apply_updates, normalize
from memory.persona.instructions import ProfileUpdate
from memory.persona.style import compute_style, interests_in
from memory.records.tables import Profile, ProfileChange, ProfileVersion, Turn, utcnow

STYLE_WINDOW = 200
"""How many of the user's latest messages the style statistics are computed from."""
STYLE_EVERY = 10
"""Recompute the style statistics once per this many new messages from the user."""


class ProfileVersionNotFoundError(LookupError):
    """The user's profile never had that version."""


def save_updates(
    session: Session,
    *,
    user_id: str,
    updates: Sequence[ProfileUpdate],
    source_turn_id: str | None,
) -> Profile:
    """Apply ``updates`` to the stored profile; on any change bump its version and log it."""
    profile = session.get(Profile, user_id)
    before = normalize(profile.data) if profile is not None else {}
    after = apply_updates(before, updates, source_turn_id=source_turn_id)
    reasons: dict[str, str] = {}
    for u in updates:
        if u.field != "memories":
            top = u.field.split(".", 1)[0]  # formatting.emoji → formatting
            reasons[top] = f"{reasons[top]}; {u.reason}" if top in reasons else u.reason
    return _store(session, user_id, profile, before, after, reasons, source_turn_id)


def replace(session: Session, *, user_id: str, data: dict[str, Any], reason: str) -> Profile:
    """Store ``data`` as the user's whole profile (an edit or a restore), logged per field."""
    profile = session.get(Profile, user_id)
    before = normalize(profile.data) if profile is not None else {}
    after = {k: v for k, v in normalize(data).items() if v not in ({}, [], None)}
    return _store(session, user_id, profile, before, after, reason, None)


def _store(
    session: Session,
    user_id: str,
    profile: Profile | None,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str | dict[str, str],
    source_turn_id: str | None,
    *,
    redact: bool = False,
) -> Profile:
    """Store ``after`` as a new version; ``reason`` may be given per top-level field."""
    why = reason if isinstance(reason, dict) else {}
    overall = "; ".join(dict.fromkeys(why.values())) if why else str(reason)
    if profile is None:
        profile = Profile(user_id=user_id, data={}, version=0)
        session.add(profile)
    if after == before:
        return profile
    profile.version += 1
    profile.data = after
    profile.updated_at = utcnow()
    for field in sorted(set(before) | set(after), key=_field_order):
        if before.get(field) != after.get(field):
            session.add(
                ProfileChange(
                    user_id=user_id,
                    version=profile.version,
                    field=field,
                    old_value=None if redact else before.get(field),
                    new_value=after.get(field),
                    reason=(why.get(field) or overall)[:500] or "updated",
                    source_turn_id=source_turn_id,
                )
            )
    session.add(
        ProfileVersion(
            user_id=user_id, version=profile.version, data=after, reason=overall[:500] or "updated"
        )
    )
    session.flush()
    return profile


def _field_order(name: str) -> int:
    return FIELDS.index(name) if name in FIELDS else len(FIELDS)


def restore(session: Session, *, user_id: str, version: int) -> Profile:
    """Make the profile as it was at ``version`` again, as a new version.

    Raises:
        ProfileVersionNotFoundError: The profile never had ``version`` (``0`` is the empty
            profile before any change, and always exists).
    """
    if version == 0:
        data: dict[str, Any] = {}
    else:
        snapshot = session.get(ProfileVersion, (user_id, version))
        if snapshot is None:
            raise ProfileVersionNotFoundError(
                f"the profile has no version {version}; GET the profile's history for the "
                "versions it has"
            )
        data = dict(snapshot.data)
    current = session.get(Profile, user_id)
    if current is not None and "style" in current.data:
        data["style"] = current.data["style"]  # statistics are measured, not restored
    return replace(session, user_id=user_id, data=data, reason=f"restored version {version}")


def history(
    session: Session, *, user_id: str, limit: int = 100, before_version: int | None = None
) -> list[ProfileChange]:
    """The latest changes to the user's profile, newest first."""
    query = select(ProfileChange).where(ProfileChange.user_id == user_id)
    if before_version is not None:
        query = query.where(col(ProfileChange.version) < before_version)
    query = query.order_by(col(ProfileChange.version).desc(), col(ProfileChange.field))
    return list(session.exec(query.limit(limit)))


def refresh_style(
    session: Session, *, user_id: str, window: int = STYLE_WINDOW, every: int = STYLE_EVERY
) -> Profile:
    """Recompute style statistics and interests from the user's latest ``window`` messages.

    Runs when the user has written ``every`` messages since the last computation (or
    there is none yet), so the profile's history is not one version per message. Saved
    only when a rounded statistic changed or a new interest appeared; interests the user
    removed by editing the profile are not re-added from messages older than that edit.
    """
    profile = session.get(Profile, user_id)
    before = normalize(profile.data) if profile is not None else {}
    total = session.exec(
        select(func.count()).select_from(Turn).where(Turn.user_id == user_id, Turn.role == "user")
    ).one()
    seen = before.get("style", {}).get("total_messages")
    if total == 0 or (seen is not None and total - seen < every):
        return profile or Profile(user_id=user_id, data={}, version=0)
    rows = session.exec(
        select(Turn.content, Turn.created_at)
        .where(Turn.user_id == user_id, Turn.role == "user")
        .order_by(col(Turn.created_at).desc())
        .limit(window)
    ).all()
    texts = [content for content, _ in reversed(rows)]
    after = {**before, "style": {**compute_style(texts), "total_messages": total}}
    edited = _last_interest_edit(session, user_id)
    fresh = [content for content, at in reversed(rows) if edited is None or at > edited]
    known = {t.lower() for t in before.get("interests", [])}
    new = [t for t in interests_in(fresh) if t not in known]
    if new:
        after["interests"] = [*before.get("interests", []), *new][-MAX_INTERESTS:]
    reason = f"style recomputed from {len(texts)} messages" + (
        f"; interests noticed: {', '.join(new)}" if new else ""
    )
    return _store(session, user_id, profile, before, after, reason, None)


def _last_interest_edit(session: Session, user_id: str) -> datetime | None:
    return session.exec(
        select(func.max(ProfileChange.created_at)).where(
            ProfileChange.user_id == user_id,
            ProfileChange.field == "interests",
            col(ProfileChange.reason).not_like("style recomputed%"),
        )
    ).one()


def forget_turns(session: Session, *, user_id: str, turn_ids: Sequence[str]) -> Profile | None:
    """Remove from the profile, and from its history, everything those turns caused.

    Instructions whose source is one of ``turn_ids`` go, and so does a field whose current
    value was set by one of them. The change rows those turns caused are deleted and the
    same values are scrubbed from the stored versions, so the deleted words survive
    nowhere. The removal itself is recorded as a new version.
    """
    gone = set(turn_ids)
    caused = list(
        session.exec(
            select(ProfileChange).where(
                ProfileChange.user_id == user_id, col(ProfileChange.source_turn_id).in_(gone)
            )
        )
    )
    profile = session.get(Profile, user_id)
    if profile is None:
        return None
    current = normalize(profile.data)
    values = {(c.field, repr(c.new_value)) for c in caused}
    caused_versions = {c.version for c in caused}

    def scrub(data: dict[str, Any]) -> dict[str, Any]:
        out = normalize(data)
        rules = [r for r in out.get("instructions", []) if r.get("source_turn_id") not in gone]
        out["instructions"] = rules
        for field in list(out):
            if field != "instructions" and (field, repr(out[field])) in values:
                del out[field]
        return {k: v for k, v in out.items() if v not in ({}, [], None)}

    after = scrub(current)
    for change in caused:
        session.delete(change)
    for snapshot in session.exec(select(ProfileVersion).where(ProfileVersion.user_id == user_id)):
        cleaned = scrub(snapshot.data)
        if cleaned != snapshot.data or snapshot.version in caused_versions:
            snapshot.data = cleaned
            if snapshot.version in caused_versions:
                snapshot.reason = "redacted: its source turn was deleted"
            session.add(snapshot)
    session.flush()
    if after == current:
        return profile
    # The old values are what the deleted turn said: the log says what went, not what it was.
    return _store(
        session, user_id, profile, current, after, "source turn deleted", None, redact=True
    )


def forget_derived(session: Session, *, user_id: str, turn_ids: Sequence[str]) -> Profile | None:
    """Recompute what the user's messages as a whole gave the profile, without ``turn_ids``.

    Style statistics and noticed interests carry no source turn: they are derived from all
    of the user's recent messages. Deleting messages recomputes the style from the rest
    and removes every interest the deleted messages named that no remaining message names
    — from the profile, its stored versions and its change log (values and reasons). Call
    before the turns are deleted. The recomputation is recorded as a new version.
    """
    gone = set(turn_ids)
    rows = session.exec(
        select(Turn.id, Turn.content)
        .where(Turn.user_id == user_id, Turn.role == "user")
        .order_by(col(Turn.created_at).desc())
    ).all()
    deleted = [content for tid, content in rows if tid in gone]
    profile = session.get(Profile, user_id)
    if not deleted or profile is None:
        return profile
    kept = [content for tid, content in rows if tid not in gone]
    still = set(interests_in(kept[:STYLE_WINDOW]))
    drop = {t for t in interests_in(deleted) if t not in still}

    def without(values: Any) -> Any:
        if not isinstance(values, list):
            return values
        return [v for v in values if not (isinstance(v, str) and v.lower() in drop)]

    current = normalize(profile.data)
    after = dict(current)
    if "style" in current:
        after["style"] = {
            **compute_style(list(reversed(kept[:STYLE_WINDOW]))),
            "total_messages": len(kept),
        }
    if drop and "interests" in current:
        after["interests"] = without(current["interests"])
    after = {k: v for k, v in after.items() if v not in ({}, [], None)}
    if drop:
        # The log's reasons name noticed interests too, whatever field a row is about.
        for snapshot in session.exec(
            select(ProfileVersion).where(ProfileVersion.user_id == user_id)
        ):
            if "interests" in snapshot.data:
                snapshot.data = {**snapshot.data, "interests": without(snapshot.data["interests"])}
            snapshot.reason = _without_noticed(snapshot.reason, drop)
            session.add(snapshot)
        for change in session.exec(select(ProfileChange).where(ProfileChange.user_id == user_id)):
            if change.field == "interests":
                change.old_value = without(change.old_value)
                change.new_value = without(change.new_value)
            change.reason = _without_noticed(change.reason, drop)
            session.add(change)
        session.flush()
    return _store(
        session,
        user_id,
        profile,
        current,
        after,
        "recomputed without deleted messages",
        None,
        redact=True,
    )


def _without_noticed(reason: str, drop: set[str]) -> str:
    """``reason`` with the dropped topics taken out of its "interests noticed: …" part."""
    head, sep, topics = reason.partition("interests noticed: ")
    if not sep:
        return reason
    left = [t for t in topics.split(", ") if t.lower() not in drop]
    return head + sep + ", ".join(left) if left else head.removesuffix("; ")
