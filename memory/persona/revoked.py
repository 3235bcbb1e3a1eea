"""Keeping revoked preferences out of the prompt when old turns are recalled.

When a user withdraws a name ("stop calling me Captain Coder") or a voice ("talk normally
again"), the profile forgets it at once, but the turns of that period are still memories:
the assistant's replies were written in that voice and under that name, and recalling one
("I'm Captain Coder, here to help…") would put the withdrawn preference back in front of
the model. :func:`revoked_spans` reads from the profile's change history when each persona
field held a value it no longer holds; :func:`contradicts` says whether a recalled memory
would bring such a value back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from memory.records.tables import ProfileChange

# Fields that shape how the assistant writes: its replies from a period when one held a
# value the user has since withdrawn speak with that withdrawn voice.
PERSONA_FIELDS = ("preferred_name", "tone", "language", "formality")


@dataclass(frozen=True)
class RevokedSpan:
    """A persona field's value that no longer holds, and when it held."""

    field: str
    value: str
    start: datetime
    end: datetime


def revoked_spans(session: Session, *, user_id: str, current: dict[str, Any]) -> list[RevokedSpan]:
    """When each persona field held a value other than its value in ``current``."""
    rows = session.exec(
        select(ProfileChange)
        .where(ProfileChange.user_id == user_id, col(ProfileChange.field).in_(PERSONA_FIELDS))
        .order_by(col(ProfileChange.version), col(ProfileChange.created_at))
    ).all()
    spans: list[RevokedSpan] = []
    held: dict[str, tuple[str, datetime]] = {}
    for row in rows:
        at = _aware(row.created_at)
        if row.field in held:
            value, start = held.pop(row.field)
            if value != current.get(row.field):
                spans.append(RevokedSpan(row.field, value, start, at))
        if isinstance(row.new_value, str) and row.new_value:
            held[row.field] = (row.new_value, at)
    now = datetime.now(UTC)
    for field, (value, start) in held.items():  # withdrawn in this turn, not yet stored
        if value != current.get(field):
            spans.append(RevokedSpan(field, value, start, now))
    return spans


def contradicts(text: str, speaker: str | None, at: datetime, spans: Sequence[RevokedSpan]) -> bool:
    """Whether a memory (its text, who said it, when) would revive a revoked value.

    Any memory that names a withdrawn name does; an assistant reply written while a
    withdrawn name, voice, language or formality held does, whatever its words.
    """
    at = _aware(at)
    for span in spans:
        if span.field == "preferred_name" and _mentions(text, span.value):
            return True
        if speaker == "assistant" and span.start <= at <= span.end:
            return True
    return False


def _mentions(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text, re.IGNORECASE) is not None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
