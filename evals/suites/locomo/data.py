"""LoCoMo conversations as the held-out evaluation imports them, and their questions.

Reads the JSON files of a LoCoMo folder (``shared/data/locomo-dev``: never copied into
the repository) and turns each conversation into what ``POST /v1/users/{id}/history``
takes, exactly as that folder's README says the held-out evaluation does: one session
per ``session_N`` dated by ``session_N_date_time``, each turn's id its ``dia_id``, its
speaker the person's name, role ``user`` for ``speaker_a`` and ``assistant`` for
``speaker_b``, a shared photo appended as ``" [shares a photo: <caption>]"``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.history import ImportSession, ImportTurn

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
"""Question categories scored for recall (5, adversarial, has no evidence to find)."""

_SESSION = re.compile(r"session_(\d+)")


@dataclass(frozen=True)
class LocomoQuestion:
    """A question of categories 1-4 and the ``dia_id`` s of the turns that answer it."""

    conversation: str
    text: str
    evidence: tuple[str, ...]
    category: str
    answer: str = ""
    """The benchmark's gold answer (for answer accuracy)."""


@dataclass(frozen=True)
class LocomoTurn:
    """One dialogue turn as imported and as the baselines index it."""

    id: str
    speaker: str
    text: str
    date: str
    """The session's date as written in the data (``"8 May, 2023"``)."""


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo conversation: its sessions to import, its turns and its questions."""

    key: str
    speakers: tuple[str, str]
    sessions: list[ImportSession]
    turns: list[LocomoTurn]
    questions: list[LocomoQuestion]


def parse_when(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` as a UTC datetime."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def _turn_text(turn: dict[str, Any]) -> str:
    text = str(turn.get("text", ""))
    caption = turn.get("blip_caption")
    return f"{text} [shares a photo: {caption}]" if caption else text


def conversation(
    key: str, data: dict[str, Any], *, max_sessions: int | None = None
) -> Conversation:
    """One conversation from its JSON; ``max_sessions`` keeps only the first sessions.

    Questions without evidence are left out, and with ``max_sessions`` those whose
    evidence lies partly outside the kept sessions.
    """
    a, b = str(data["speaker_a"]), str(data["speaker_b"])
    numbers = sorted(int(m.group(1)) for k in data if (m := _SESSION.fullmatch(k)) and data[k])
    if max_sessions is not None:
        numbers = numbers[:max_sessions]
    sessions: list[ImportSession] = []
    turns: list[LocomoTurn] = []
    for n in numbers:
        raw_when = str(data[f"session_{n}_date_time"])
        when = parse_when(raw_when)
        date = raw_when.split(" on ", 1)[-1]
        items = []
        for t in data[f"session_{n}"]:
            text = _turn_text(t)
            speaker = str(t["speaker"])
            role = "user" if speaker == a else "assistant"
            items.append(ImportTurn(str(t["dia_id"]), role, text, speaker, when))
            turns.append(LocomoTurn(str(t["dia_id"]), speaker, text, date))
        sessions.append(ImportSession(id=f"{key}:session_{n}", started_at=when, turns=items))
    known = {t.id for t in turns}
    questions = []
    for q in data["qa"]:
        # One item in the data reads "D8:6; D9:17": two ids in one string.
        evidence = tuple(e.strip() for item in q.get("evidence", []) for e in item.split(";"))
        if q.get("category") not in CATEGORIES or not evidence:
            continue
        if max_sessions is not None and not set(evidence) <= known:
            continue
        questions.append(
            LocomoQuestion(
                key,
                str(q["question"]),
                evidence,
                CATEGORIES[q["category"]],
                str(q.get("answer", "")),
            )
        )
    return Conversation(key, (a, b), sessions, turns, questions)


def load(
    folder: Path, *, conversations: int | None = None, max_sessions: int | None = None
) -> list[Conversation]:
    """The conversations in ``folder`` (``*.json``, by name), optionally the first few."""
    files = sorted(folder.glob("*.json"))[:conversations]
    if not files:
        raise FileNotFoundError(f"no LoCoMo *.json files in {folder}")
    return [
        conversation(f.stem, json.loads(f.read_text(encoding="utf-8")), max_sessions=max_sessions)
        for f in files
    ]
