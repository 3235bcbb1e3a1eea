"""Synthetic, labelled clauses for training and checking the instruction classifier.

Every example is built from a *template* (a core phrasing with slots), optionally wrapped
in a lead-in and a trailer. Templates and slot values (names, languages, tones) are split
once into ``train`` and ``heldout`` by a stable hash, so the held-out figure measures
phrasings and values the classifier never saw. The templates
(``instructions_templates.txt``) were written from the profile's vocabulary; a few standing
rules echo the already-seen ``dev``/``test`` cases of ``evals/suites/instructions/data.py``, and the
kinds of miss issue 12 names from ``holdout2`` (typos aside) are covered by rephrasings, not
copies, so ``holdout2`` is no longer a blind set for this detector.

Labels are the classifier's classes (:data:`LABELS`); ``none`` is anything that does not
ask the assistant for a standing change: chat, questions, one-off requests, and look-alikes
(habits, other people's names, reported speech).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

Split = Literal["train", "heldout"]

_LABEL_WORDS = (
    "none name_set name_unset lang_set lang_unset tone_set tone_unset formal casual brief "
    "detailed length_unset emoji_off emoji_on lists_off lists_on markdown_off markdown_on "
    "rule_add rule_remove forget"
)
LABELS: tuple[str, ...] = tuple(_LABEL_WORDS.split())


TEMPLATES_PATH = Path(__file__).with_name("instructions_templates.txt")


@cache
def templates(path: Path = TEMPLATES_PATH) -> dict[str, tuple[str, ...]]:
    """Label → its templates, from ``instructions_templates.txt`` (``[label]`` headings)."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = out.setdefault(line[1:-1], [])
        else:
            current.append(line)
    return {label: tuple(ts) for label, ts in out.items()}


_LEADS_STANDING = (
    "from now on",
    "going forward",
    "in future",
    "from here on",
    "for the rest of our chats",
    "always",
    "starting today",
)
_LEADS_POLITE = ("please", "hey", "ok so", "one more thing:", "also", "oh and")
_LEADS_VERB = ("could you", "can you", "i'd like you to", "i want you to", "do me a favour and")
_IMPERATIVE_WORDS = (
    "call address refer use say greet name answer reply speak switch write respond talk "
    "change stop drop quit go forget be keep stay sound act make give cut trim explain "
    "elaborate expand lose skip avoid leave add throw put sprinkle format break cite "
    "include sign start show ask number quote erase delete chat loosen relax ditch"
)
_IMPERATIVE = frozenset(_IMPERATIVE_WORDS.split())
_TRAILERS = (
    "please",
    "thanks",
    "from now on",
    "going forward",
    "if you don't mind",
    "ok?",
    "thank you!",
    "for all your answers",
)

_NAMES = [
    "Sam",
    "Captain",
    "Alex",
    "Priya",
    "Jo",
    "Mo",
    "Dr.",
    "Lee",
    "Bea",
    "Chief",
    "Kofi",
    "Lena",
    "Boss",
    "Ziggy",
    "Raf",
    "Anouk",
    "Tomasz",
    "Mei",
    "Nadia",
    "Hank",
    "Professor",
    "Oak",
    "Ivy",
    "Teo",
    "Skipper",
    "Rosa",
    "Jun",
]
_LANGS = [
    "French",
    "Spanish",
    "German",
    "Italian",
    "Portuguese",
    "Dutch",
    "Japanese",
    "Korean",
    "Polish",
    "Swedish",
    "Greek",
    "Turkish",
    "Russian",
    "Hindi",
    "Czech",
    "Danish",
    "Finnish",
    "Norwegian",
    "Vietnamese",
    "Indonesian",
]
_TONE_LIKE = (
    "a pirate",
    "a cowboy",
    "a butler",
    "a sports commentator",
    "a wizard",
    "a detective",
    "a surfer",
    "a robot",
    "a news anchor",
    "a medieval knight",
)
_TONE_ADJ = [
    "playful",
    "cheerful",
    "serious",
    "blunt",
    "gentle",
    "witty",
    "sarcastic",
    "enthusiastic",
    "calm",
    "upbeat",
    "warm",
    "direct",
    "encouraging",
    "grumpy",
    "dramatic",
]
_CITIES = [
    "Paris",
    "Lisbon",
    "Oslo",
    "Lagos",
    "Denver",
    "Kyoto",
    "Leeds",
    "Austin",
    "Porto",
    "Quito",
]


@dataclass(frozen=True)
class Example:
    """One labelled message (one clause, or several joined) and where it came from."""

    text: str
    labels: tuple[str, ...]
    template: str
    split: Split
    expected: tuple[tuple[str, str, object], ...] = ()
    """The profile updates it should cause, as ``(field, op, value)`` (see ``expected_for``)."""


def split_of(key: str, heldout_share: float = 0.3) -> Split:
    """``train`` or ``heldout`` for a template or slot value, stable across runs."""
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return "heldout" if digest / 0xFFFFFFFF < heldout_share else "train"


def _values(split: Split) -> dict[str, list[str]]:
    """Slot values of ``split``: each value belongs to exactly one split."""
    pools = {
        "name": _NAMES,
        "lang": _LANGS,
        "tone_like": list(_TONE_LIKE),
        "tone_adj": _TONE_ADJ,
        "city": _CITIES,
    }
    out = {}
    for slot, pool in pools.items():
        chosen = [v for v in pool if split_of(f"{slot}:{v}", 0.35) == split]
        out[slot] = chosen or list(pool)
    return out


_FIXED: dict[str, tuple[str, str, object]] = {
    "name_unset": ("preferred_name", "unset", None),
    "lang_unset": ("language", "unset", None),
    "tone_unset": ("tone", "unset", None),
    "formal": ("formality", "set", "formal"),
    "casual": ("formality", "set", "casual"),
    "brief": ("verbosity", "set", "brief"),
    "detailed": ("verbosity", "set", "detailed"),
    "length_unset": ("verbosity", "unset", None),
    "emoji_off": ("formatting.emoji", "set", False),
    "emoji_on": ("formatting.emoji", "set", True),
    "lists_off": ("formatting.lists", "set", False),
    "lists_on": ("formatting.lists", "set", True),
    "markdown_off": ("formatting.markdown", "set", False),
    "markdown_on": ("formatting.markdown", "set", True),
}


def expected_for(label: str, template: str, slots: dict[str, str]) -> tuple[str, str, object]:
    """The update ``label`` means for a clause filled from ``template`` with ``slots``.

    Free-form values (standing rules, forgets) are the whole clause: the scorer accepts a
    detected value that is part of it.
    """
    if label in _FIXED:
        return _FIXED[label]
    if label == "name_set":
        return ("preferred_name", "set", slots["name"])
    if label == "lang_set":
        return ("language", "set", slots["lang"])
    if label == "tone_set":
        tone = f"like {slots['tone_like']}" if "{tone_like}" in template else slots["tone_adj"]
        return ("tone", "set", tone)
    clause = template.format(**slots).strip(" .!?,")
    op = {"rule_add": "add", "rule_remove": "remove", "forget": "forget"}[label]
    return ("memories" if label == "forget" else "instructions", op, clause)


def _slots(values: dict[str, list[str]], rng: random.Random) -> dict[str, str]:
    tone_like = rng.choice(values["tone_like"])
    return {
        "name": rng.choice(values["name"]),
        "lang": rng.choice(values["lang"]),
        "tone_like": tone_like,
        "tone_like_bare": tone_like.split(" ", 1)[1],
        "tone_adj": rng.choice(values["tone_adj"]),
        "city": rng.choice(values["city"]),
    }


def _fill(
    label: str, template: str, values: dict[str, list[str]], rng: random.Random
) -> tuple[str, tuple[tuple[str, str, object], ...]]:
    slots = _slots(values, rng)
    expected = () if label == "none" else (expected_for(label, template, slots),)
    return template.format(**slots), expected


def _dress(core: str, label: str, rng: random.Random) -> str:
    """Wrap ``core`` in an optional lead-in and trailer, with varied case and punctuation."""
    text = core
    roll = rng.random()
    if label != "none" and roll < 0.3:
        text = f"{rng.choice(_LEADS_STANDING)} {text}"
    elif roll < 0.45 and core.split()[0] in _IMPERATIVE:
        text = f"{rng.choice(_LEADS_VERB)} {text}"
    elif roll < 0.6:
        text = f"{rng.choice(_LEADS_POLITE)} {text}"
    trailers = _TRAILERS if label != "none" else _TRAILERS[:2] + _TRAILERS[4:6]
    if rng.random() < 0.3:
        text = f"{text}, {rng.choice(trailers)}"
    if rng.random() < 0.6:
        text = text[:1].upper() + text[1:]
    if not text.endswith(("?", "!")) and rng.random() < 0.6:
        text += rng.choice((".", "!", "."))
    return text


def examples(split: Split, *, per_template: int = 8, seed: int = 0) -> list[Example]:
    """Single-clause examples of ``split``: every template of it, ``per_template`` fills each."""
    rng = random.Random(f"{seed}:{split}")
    values = _values(split)
    out: list[Example] = []
    for label, phrasings in templates().items():
        for template in phrasings:
            key = f"{label}:{template}"
            if split_of(key) != split:
                continue
            n = per_template * (2 if label == "none" else 1)
            for _ in range(n):
                core, expected = _fill(label, template, values, rng)
                text = _dress(core, label, rng)
                out.append(Example(text, (label,), key, split, expected))
    return out


def compound(split: Split, *, n: int = 150, seed: int = 0) -> list[Example]:
    """Messages giving two or three instructions at once: joined by commas, "and", lists."""
    rng = random.Random(f"{seed}:{split}:compound")
    values = _values(split)
    mine = [
        (label, t)
        for label, ts in templates().items()
        if label not in ("none", "forget")
        for t in ts
        if split_of(f"{label}:{t}") == split
    ]
    out: list[Example] = []
    while len(out) < n:
        picks = rng.sample(mine, rng.choice((2, 2, 3)))
        filled = [_fill(label, t, values, rng) for label, t in picks]
        fields = [e[0] for _, ex in filled for e in ex]
        if len(set(fields)) < len(fields) and "instructions" not in fields:
            continue  # two values for one field contradict each other
        cores = [core for core, _ in filled]
        style = rng.randrange(4)
        if style == 0:
            text = ", ".join(cores[:-1]) + " and " + cores[-1]
        elif style == 1:
            text = ", ".join(cores)
        elif style == 2:
            text = "a few things: " + "; ".join(cores)
        else:
            text = "\n".join(f"- {c}" for c in cores)
        if rng.random() < 0.4:
            text = f"{rng.choice(_LEADS_STANDING)}, {text}"
        labels = tuple(label for label, _ in picks)
        key = "compound:" + "|".join(t for _, t in picks)
        out.append(Example(text, labels, key, split, tuple(e for _, ex in filled for e in ex)))
    return out


def chat_sentences(texts: list[str], split: Split) -> list[Example]:
    """Ordinary prose as ``none`` examples, one sentence each, split by source text."""
    out: list[Example] = []
    for i, text in enumerate(texts):
        key = f"prose:{i}"
        if split_of(key) != split:
            continue
        for sentence in text.replace("!", ".").replace("?", ".").split("."):
            if len(sentence.split()) >= 3:
                out.append(Example(sentence.strip() + ".", ("none",), key, split))
    return out
