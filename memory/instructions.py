"""Rule-based detection of explicit instructions in a user's message.

Deliberately conservative: an instruction must be addressed to the assistant ("call me
Captain", "from now on answer in French"), so look-alikes such as "my friend calls me
Captain" change nothing. The Persona issue widens the rule set and adds an optional
model-based detector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Op = Literal["set", "unset", "add"]

_LEAD = r"(?:^|[.!?;]\s+|,\s*)(?:ok(?:ay)?,?\s+|so,?\s+|and\s+)?"
_POLITE = (
    r"(?:please\s+|pls\s+|from\s+now\s+on,?\s+|going\s+forward,?\s+|you\s+can\s+|could\s+you\s+)*"
)
_NAME = r"(?P<name>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,3})"

_CALL_ME = re.compile(_LEAD + _POLITE + r"call\s+me\s+" + _NAME, re.IGNORECASE)
_STOP_CALLING = re.compile(
    _LEAD + _POLITE + r"(?:stop\s+calling\s+me|don'?t\s+call\s+me|do\s+not\s+call\s+me)\b",
    re.IGNORECASE,
)
_STANDING = re.compile(
    r"(?:^|[.!?]\s+)(?:from\s+now\s+on|going\s+forward|always)\s*,?\s+(?P<rule>[^.!?\n]{3,200})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ProfileUpdate:
    """One change to a profile field that a message asks for."""

    field: str
    op: Op
    value: str | None
    reason: str


def detect_instructions(text: str) -> list[ProfileUpdate]:
    """Return the profile updates ``text`` explicitly asks for, in the order found."""
    updates: list[ProfileUpdate] = []
    if _STOP_CALLING.search(text):
        updates.append(ProfileUpdate("preferred_name", "unset", None, "asked to stop using a name"))
    else:
        match = _CALL_ME.search(text)
        if match:
            name = _trim_name(match.group("name"))
            updates.append(
                ProfileUpdate("preferred_name", "set", name, f'asked to be called "{name}"')
            )
    for match in _STANDING.finditer(text):
        rule = match.group("rule").strip().rstrip(",")
        if _CALL_ME.search("call me " + rule) and rule.lower().startswith("call me"):
            continue  # already handled as a name
        updates.append(ProfileUpdate("instructions", "add", rule, "standing instruction"))
    return updates


def _trim_name(name: str) -> str:
    # "Captain and answer like a pirate" → "Captain": stop at a lowercase connective.
    words = name.split()
    kept = [w for w in words if w[:1].isupper()]
    return " ".join(kept[: len(words)]) if kept else name
