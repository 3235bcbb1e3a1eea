"""Generated histories for the preference-surfacing suite.

Each synthetic user states 20 preferences once each ("I'm vegetarian"), scattered through
at least 300 turns of ordinary multi-turn chat, and later asks one question per topic that
only a personalized answer gets right ("What should I cook tonight?"). The suite then
checks that the composed system prompt holds the preference.

Topics, their phrasings and the distractor conversations are split by template, and users
of each split get their own seeds and ids: ``tune`` (half of the first topic set, and half
of the distractor chats) is what anything was tuned on; ``report`` (the fourth topic set,
``preference_topics_v4.txt``, written blind by someone who saw neither the code nor the
earlier sets, with the other half of the chats) is the headline. ``seen`` (the first set's
other half), ``seen2`` and ``seen3`` (the second and third sets) were each meant to be held
out, but were read while extraction was designed after they were scored, so they are
reported under their own labels. ``seen3`` was written blind too and scored once before
being read (0.817): it is the last blind figure of the design before the current one.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from evals import DATA_DIR

Split = Literal["tune", "seen", "seen2", "seen3", "report"]

DATA = DATA_DIR
TOPICS_PATH = DATA / "preference_topics_v1.txt"
SECOND_TOPICS_PATH = DATA / "preference_topics_v2.txt"
THIRD_TOPICS_PATH = DATA / "preference_topics_v3.txt"
BLIND_TOPICS_PATH = DATA / "preference_topics_v4.txt"
CHATS_PATH = DATA / "preference_chats_v1.txt"


_REPLIES = (
    "That sounds like a plan.",
    "Good question. In short, it depends on a few things, but here's the gist.",
    "Happy to help with that.",
    "Here's a simple way to think about it.",
    "Nice! Let me know how it goes.",
    "That makes sense.",
    "Sure, here are a few ideas.",
    "Great, glad that helps.",
)
_SLOTS = {
    "friend": ["Maya", "Jonas", "Ines", "Pavel", "Zoe", "Omar", "Lucia", "Ben", "Aiko"],
    "city": ["Porto", "Vienna", "Krakow", "Seville", "Ghent", "Bergen", "Turin", "Leeds"],
    "thing": ["sofa", "washing machine", "desk", "dog", "stereo", "bookshelf"],
    "instrument": ["guitar", "piano", "violin", "drums", "cello"],
    "place": ["Colosseum", "Great Wall", "Alhambra", "Parthenon", "Eiffel Tower"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
}
ACK = "Thanks for telling me, I'll keep that in mind."


@dataclass(frozen=True)
class Topic:
    """A preference stated once and the question that needs it."""

    id: str
    evidence: tuple[str, ...]
    statements: tuple[str, ...]
    questions: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """One question to ask after the import, and what the prompt must then contain."""

    topic: str
    question: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class UserHistory:
    """A synthetic user's imported sessions (API shape) and the probes to ask."""

    name: str
    split: Split
    sessions: list[dict[str, object]]
    probes: list[Probe]

    @property
    def turns(self) -> int:
        """Imported turns in all."""
        return sum(len(s["turns"]) for s in self.sessions)  # type: ignore[arg-type,misc]


def holds(text: str, evidence: Iterable[str]) -> bool:
    """Whether ``text`` contains any of ``evidence`` at the start of a word."""
    low = text.lower()
    return any(re.search(r"\b" + re.escape(e), low) for e in evidence)


def _lines(path: Path) -> list[str]:
    """The non-blank, non-comment lines of a data file."""
    text = path.read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def split_of(key: str) -> Literal["tune", "report"]:
    """``tune`` or ``report`` for a distractor chat template, stable across runs."""
    return "report" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 2 else "tune"


def topics(split: Split) -> list[Topic]:
    """The 20 topics of ``split``.

    ``tune`` and ``seen`` halve the first set (ranked by hash), ``seen2`` and ``seen3``
    are the second and third sets and ``report`` the fourth, written blind (see the
    module's docstring).
    """
    if split == "report":
        return _parse(BLIND_TOPICS_PATH)
    if split == "seen2":
        return _parse(SECOND_TOPICS_PATH)
    if split == "seen3":
        return _parse(THIRD_TOPICS_PATH)
    parsed = _parse(TOPICS_PATH)
    ranked = sorted(parsed, key=lambda t: hashlib.sha256(f"topic:{t.id}".encode()).hexdigest())
    half = len(ranked) // 2
    return ranked[:half] if split == "tune" else ranked[half:]


def _parse(path: Path) -> list[Topic]:
    parsed = []
    for line in _lines(path):
        tid, words, said, asked = (p.strip() for p in line.split(" | "))
        parsed.append(
            Topic(
                tid, tuple(words.split(", ")), tuple(said.split(" || ")), tuple(asked.split(" || "))
            )
        )
    return parsed


def chats(split: Split) -> list[list[str]]:
    """The distractor conversations of ``split``: lists of user turns with {slots}."""
    lines = _lines(CHATS_PATH)
    side = "tune" if split == "tune" else "report"  # ``seen*`` users chat like ``report`` ones
    return [line.split(" / ") for line in lines if split_of(f"chat:{line}") == side]


def make_user(split: Split, index: int, *, min_distractors: int = 300) -> UserHistory:
    """User ``index`` of ``split``: 20 preferences among ``min_distractors``+ chat turns."""
    rng = random.Random(f"preference:{split}:{index}")
    mine = topics(split)
    pool = chats(split)
    evidence = {w for t in mine for w in t.evidence}
    sessions: list[list[tuple[str, str]]] = []
    count = 0
    while count < min_distractors:
        slots = {k: rng.choice(v) for k, v in _SLOTS.items()}
        turns: list[tuple[str, str]] = []
        for text in rng.choice(pool):
            said = text.format(**slots)
            turns += [("user", said), ("assistant", rng.choice(_REPLIES))]
        if any(holds(said, evidence) for _, said in turns):
            continue  # a chat that happens to hold one of this user's evidence words
        sessions.append(turns)
        count += len(turns)
    for topic in mine:  # each preference once, inside a random session
        session = rng.choice(sessions)
        at = rng.randrange(0, len(session) // 2 + 1) * 2
        session[at:at] = [("user", rng.choice(topic.statements)), ("assistant", ACK)]
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    name = f"pref-{split}-{index}"
    api_sessions: list[dict[str, object]] = [
        {
            "id": f"{name}-s{i}",
            "started_at": (start + timedelta(days=i)).isoformat(),
            "turns": [
                {"id": f"{name}-s{i}-t{j}", "role": role, "content": text}
                for j, (role, text) in enumerate(turns)
            ],
        }
        for i, turns in enumerate(sessions)
    ]
    probes = [Probe(t.id, rng.choice(t.questions), t.evidence) for t in mine]
    return UserHistory(name, split, api_sessions, probes)
