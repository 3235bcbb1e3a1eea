"""Synthetic users with distinctive reply styles, for ``attune eval adapters``.

Every user asks the same everyday questions; what differs is how they want to be
answered. A neutral answer is rewritten into each style by fixed rules and a seeded
random choice of openers and closers, so the data is the same on every run and every
machine. SFT examples are the styled replies; DPO pairs prefer the styled reply over the
neutral one. None of these texts appear in the general-text set.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.datasets import PreferencePair, SFTExample
from evals import DATA_DIR

QA_PATH = DATA_DIR / "adapters_qa_v1.jsonl"
"""Everyday questions with neutral answers, written for this eval (versioned)."""


def load_qa(path: Path = QA_PATH) -> list[tuple[str, str]]:
    """The (question, neutral answer) pairs, in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [(r["question"], r["answer"]) for r in rows]


@dataclass(frozen=True)
class StyledUser:
    """A synthetic user: a name, a style and the rewrite that produces it."""

    name: str
    style: str
    rewrite: Callable[[str, random.Random], str]


def _terse(text: str, rng: random.Random) -> str:
    first = text.split(". ")[0].rstrip(".")
    words = [w for w in first.split() if w.lower() not in {"the", "a", "an", "about", "it"}]
    return " ".join(words).lower() + "."


_PIRATE_WORDS = {
    r"\byou\b": "ye",
    r"\byour\b": "yer",
    r"\bis\b": "be",
    r"\bare\b": "be",
    r"\bmy\b": "me",
    r"\bthe\b": "th'",
    r"\bfor\b": "fer",
    r"\band\b": "an'",
}
_PIRATE_OPEN = ("Arr, matey!", "Ahoy there!", "Yo ho ho!", "Avast, me hearty!")
_PIRATE_CLOSE = ("Now hoist the sails!", "Savvy?", "Fair winds to ye!", "Arr!")


def _pirate(text: str, rng: random.Random) -> str:
    for pattern, repl in _PIRATE_WORDS.items():

        def keep_case(match: re.Match[str], repl: str = repl) -> str:
            return repl.capitalize() if match.group(0)[0].isupper() else repl

        text = re.sub(pattern, keep_case, text, flags=re.IGNORECASE)
    return f"{rng.choice(_PIRATE_OPEN)} {text} {rng.choice(_PIRATE_CLOSE)}"


_EMOJI_OPEN = ("Ooh great question!! 😄🎉", "Yay, love this one!! 🥳✨", "Omg yes!! 😍🙌")
_EMOJI_TAIL = (" 🌟", " 👍", " 💯", " 🔥", " 😊")
_EMOJI_CLOSE = ("You got this!! 💪😄", "Have fun!! 🎈🌈", "Hope that helps!! 🤗💖")


def _emoji(text: str, rng: random.Random) -> str:
    sentences = [s.rstrip(".") for s in text.split(". ")]
    body = " ".join(s + "!" + rng.choice(_EMOJI_TAIL) for s in sentences)
    return f"{rng.choice(_EMOJI_OPEN)} {body} {rng.choice(_EMOJI_CLOSE)}"


_FORMAL_OPEN = (
    "Thank you for your enquiry.",
    "I would be pleased to assist you with this matter.",
    "Certainly; permit me to explain.",
)
_FORMAL_CLOSE = (
    "I trust this information is of assistance. Yours faithfully.",
    "Should you require further guidance, please do not hesitate to ask. Kind regards.",
    "I remain at your disposal for any further questions. Respectfully yours.",
)


def _formal(text: str, rng: random.Random) -> str:
    text = text.replace("Put ", "One should place ").replace("Use ", "One may use ")
    return f"{rng.choice(_FORMAL_OPEN)} {text} {rng.choice(_FORMAL_CLOSE)}"


USERS: tuple[StyledUser, ...] = (
    StyledUser("terse", "short, lowercase, no pleasantries", _terse),
    StyledUser("pirate", "pirate speech with openers and sign-offs", _pirate),
    StyledUser("emoji", "exclamations and emoji everywhere", _emoji),
    StyledUser("formal", "formal letter register", _formal),
)


def user_data(user: StyledUser, seed: int = 0) -> tuple[list[SFTExample], list[PreferencePair]]:
    """A user's SFT examples and DPO pairs, the same on every run for the same seed.

    Args:
        user: The synthetic user.
        seed: Varies the openers and closers chosen.

    Returns:
        ``(examples, pairs)``, one of each per question; source ids are
        ``<user>-q<NN>``, so held-out splits by id agree between the two.
    """
    rng = random.Random(f"{user.name}:{seed}")
    examples: list[SFTExample] = []
    pairs: list[PreferencePair] = []
    for i, (question, answer) in enumerate(load_qa()):
        source_id = f"{user.name}-q{i:02d}"
        prompt = ({"role": "user", "content": question},)
        styled = user.rewrite(answer, rng)
        examples.append(SFTExample(prompt, styled, "accepted", source_id))
        pairs.append(PreferencePair(prompt, styled, answer, source_id))
    return examples, pairs
