"""The persona profile document: its fields, how updates apply, and what the prompt says.

A profile is a JSON document (``profiles.data``) with these fields, all optional:

``preferred_name``
    What to call the user.
``language``
    The language to answer in ("French").
``tone``
    A voice or manner ("like a pirate", "playful").
``formality``
    ``formal`` or ``casual``.
``verbosity``
    ``brief`` or ``detailed``.
``formatting``
    ``{"emoji": bool, "lists": bool, "markdown": bool}``; a missing key means no preference.
``instructions``
    Standing rules: ``[{"id", "text", "source_turn_id", "created_at"}]``.
``interests``
    Topics the user cares about, newest last.
``style``
    Statistics of the user's own writing (``memory.persona.style``); recomputed, not edited.

Everything here is pure: ``memory.persona.profile`` stores the result and its history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from memory.persona.instructions import ProfileUpdate
from memory.persona.words import content_words
from memory.records.tables import new_id, utcnow

SCALAR_FIELDS = ("preferred_name", "language", "tone", "formality", "verbosity")
FORMATTING_KEYS = ("emoji", "lists", "markdown")
FIELDS = (*SCALAR_FIELDS, "formatting", "instructions", "interests", "style")
MAX_INSTRUCTIONS = 50
MAX_INTERESTS = 30


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the current shape (older profiles kept instructions as plain strings)."""
    out = dict(data)
    rules = out.get("instructions")
    if rules:
        out["instructions"] = [
            r if isinstance(r, dict) else {"id": _legacy_id(str(r)), "text": str(r)} for r in rules
        ]
    return out


def _legacy_id(text: str) -> str:
    return "ins_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def apply_updates(
    data: dict[str, Any],
    updates: Sequence[ProfileUpdate],
    *,
    source_turn_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return a new profile document with ``updates`` applied (pure; ``data`` is untouched).

    ``memories``/``forget`` updates are not profile changes and are skipped here (the
    caller forgets matching memories). Adding an instruction that is already there (same
    text, ignoring case) changes nothing; removing one drops the instruction whose words
    best match, if at least half of the request's words are in it.
    """
    out = normalize(data)
    out["formatting"] = dict(out.get("formatting", {}))
    out["instructions"] = list(out.get("instructions", []))
    out["interests"] = list(out.get("interests", []))
    stamp = (now or utcnow()).isoformat()
    for update in updates:
        if update.field.startswith("formatting."):
            key = update.field.split(".", 1)[1]
            if update.op == "set":
                out["formatting"][key] = bool(update.value)
            else:
                out["formatting"].pop(key, None)
        elif update.field in SCALAR_FIELDS:
            if update.op == "set" and update.value not in (None, ""):
                out[update.field] = update.value
            elif update.op == "unset":
                out.pop(update.field, None)
        elif update.field == "instructions" and update.value:
            text = str(update.value)
            if update.op == "add" and not _find_exact(out["instructions"], text):
                rule: dict[str, Any] = {
                    "id": new_id("ins"),
                    "text": text,
                    "created_at": stamp,
                    "source_turn_id": source_turn_id,
                }
                out["instructions"] = [*out["instructions"], rule][-MAX_INSTRUCTIONS:]
            elif update.op == "remove":
                out["instructions"] = _without(out["instructions"], text)
        elif update.field == "interests" and update.value:
            topic = str(update.value)
            kept = [t for t in out["interests"] if t.lower() != topic.lower()]
            if update.op == "add":
                kept.append(topic)
            out["interests"] = kept[-MAX_INTERESTS:]
    return {k: v for k, v in out.items() if v not in ({}, [], None)}


def _find_exact(rules: list[dict[str, Any]], text: str) -> bool:
    return any(r["text"].strip().lower() == text.strip().lower() for r in rules)


def _without(rules: list[dict[str, Any]], request: str) -> list[dict[str, Any]]:
    """``rules`` without the one ``request`` names by id, or best by shared words."""
    if any(r["id"] == request for r in rules):
        return [r for r in rules if r["id"] != request]
    wanted = content_words(request)
    if not wanted:
        return rules
    best, best_overlap = None, 0.0
    for rule in rules:
        have = content_words(rule["text"])
        overlap = len(wanted & have) / len(wanted)
        if overlap > best_overlap:
            best, best_overlap = rule, overlap
    if best is None or best_overlap < 0.5:
        return rules
    return [r for r in rules if r is not best]


def instruction_texts(data: dict[str, Any]) -> list[str]:
    """The standing instructions' texts, oldest first."""
    return [r["text"] for r in normalize(data).get("instructions", [])]


def directives(data: dict[str, Any]) -> list[str]:
    """The profile's preferences as sentences for the system prompt (never cut)."""
    out: list[str] = []
    if name := data.get("preferred_name"):
        out.append(f"Address the user as {name}.")
    if language := data.get("language"):
        out.append(f"Always answer in {language}, whatever language the question is in.")
    if tone := data.get("tone"):
        out.append(f"Talk {tone}." if tone.startswith("like ") else f"Use a {tone} tone.")
    if formality := data.get("formality"):
        out.append(
            "Be formal and polite."
            if formality == "formal"
            else "Be casual and relaxed, not formal."
        )
    if verbosity := data.get("verbosity"):
        out.append(
            "Keep answers short: a few sentences at most."
            if verbosity == "brief"
            else "Give detailed, thorough answers."
        )
    formatting = data.get("formatting", {})
    if formatting.get("emoji") is False:
        out.append("Never use emoji.")
    elif formatting.get("emoji") is True:
        out.append("Use emoji where they fit.")
    if formatting.get("lists") is False:
        out.append("Do not use bullet or numbered lists; write in paragraphs.")
    elif formatting.get("lists") is True:
        out.append("Use bullet lists to structure answers.")
    if formatting.get("markdown") is False:
        out.append("Write plain text without markdown.")
    elif formatting.get("markdown") is True:
        out.append("Format answers with markdown.")
    return out
