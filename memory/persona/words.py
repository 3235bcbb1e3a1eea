"""Content words of a short text, for matching a request against what it names.

"Stop ending every answer with a question" and the rule "End every answer with a question"
share their content words once filler is dropped and plural/verb endings are trimmed.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")
_FILLER_WORDS = (
    "i i'm im me my mine a an the that this to of in on at and or is am are was were be "
    "been about have has had do did with for your you every each"
)
FILLER = frozenset(_FILLER_WORDS.split())


def stem(word: str) -> str:
    """``word`` without a plural or verb ending ("endings" → "ending" → "end")."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The stemmed, lower-cased words of ``text`` that are not filler."""
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in FILLER}
