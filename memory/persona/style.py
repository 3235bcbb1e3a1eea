"""Writing-style statistics of a user's own messages, and the hints they give the prompt.

Computed from the user's recent messages (never the assistant's), rounded so that a
recomputation that changes nothing meaningful leaves the profile as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Pictographs, symbols, dingbats, flags and the like: enough to count emoji use.
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b50\U00002b55]"
)
MIN_MESSAGES = 3
"""Below this many messages the statistics are not trusted and give no hints."""


def compute_style(messages: Sequence[str]) -> dict[str, Any]:
    """Statistics of ``messages`` (the user's own, newest last).

    Returns:
        ``messages``; ``avg_chars`` and ``avg_words`` per message; ``avg_sentence_words``;
        ``vocabulary`` (distinct words / words, over up to the last 2,000 words);
        ``exclamation_rate``, ``question_rate``, ``emoji_rate`` (per message);
        ``ellipsis_rate`` (per message); ``lowercase_start`` (share of messages starting
        lowercase); ``all_caps_words`` (share of words in capitals, 2+ letters);
        ``ends_with_period`` (share of messages ending with a full stop).
    """
    texts = [m.strip() for m in messages if m and m.strip()]
    n = len(texts)
    if n == 0:
        return {"messages": 0}
    words = [w for t in texts for w in _WORD.findall(t)]
    sentences = [s for t in texts for s in _SENTENCE.findall(t) if _WORD.search(s)]
    recent = [w.lower() for w in words[-2000:]]
    letters_start = [t for t in texts if t[:1].isalpha()]
    caps = [w for w in words if len(w) >= 2 and w.isupper()]
    return {
        "messages": n,
        "avg_chars": round(sum(len(t) for t in texts) / n, 1),
        "avg_words": round(len(words) / n, 1),
        "avg_sentence_words": round(len(words) / max(len(sentences), 1), 1),
        "vocabulary": round(len(set(recent)) / len(recent), 2) if recent else 0.0,
        "exclamation_rate": round(sum(t.count("!") for t in texts) / n, 2),
        "question_rate": round(sum(t.count("?") for t in texts) / n, 2),
        "emoji_rate": round(sum(len(_EMOJI.findall(t)) for t in texts) / n, 2),
        "ellipsis_rate": round(sum(t.count("...") + t.count("…") for t in texts) / n, 2),
        "lowercase_start": round(
            sum(t[0].islower() for t in letters_start) / max(len(letters_start), 1), 2
        ),
        "all_caps_words": round(len(caps) / max(len(words), 1), 3),
        "ends_with_period": round(sum(t.endswith(".") for t in texts) / n, 2),
    }


def style_hints(style: dict[str, Any]) -> list[str]:
    """Short hints for mirroring the user's style; none until there are enough messages.

    Explicit preferences in the profile (verbosity, emoji, formality) override these: the
    prompt lists them first and says so.
    """
    if style.get("messages", 0) < MIN_MESSAGES:
        return []
    hints: list[str] = []
    words = style.get("avg_words", 0.0)
    if words <= 8:
        hints.append("The user writes very short messages; keep replies compact.")
    elif words >= 60:
        hints.append("The user writes long, detailed messages; fuller replies suit them.")
    if style.get("emoji_rate", 0.0) >= 0.5:
        hints.append("The user often uses emoji; an occasional emoji fits.")
    if style.get("lowercase_start", 0.0) >= 0.7 and style.get("ends_with_period", 1.0) <= 0.2:
        hints.append("The user writes informally (lowercase, little punctuation).")
    if style.get("exclamation_rate", 0.0) >= 1.0:
        hints.append("The user is enthusiastic; match their energy.")
    if style.get("avg_sentence_words", 0.0) >= 25 and style.get("vocabulary", 0.0) >= 0.6:
        hints.append("The user writes in long, varied sentences; a rich register suits them.")
    return hints


_INTEREST = re.compile(
    r"\bI(?:'m|\s+am)?\s+(?:really\s+|totally\s+|also\s+)?(?:love|enjoy|adore|into|"
    r"interested\s+in|a\s+big\s+fan\s+of)\s+(?P<topics>[a-z][\w' ,-]{2,80}?)(?=[.!?;]|\s+but\s|$)",
    re.IGNORECASE,
)
_AND = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_NOT_TOPIC = frozenset(["it", "that", "this", "you", "them", "him", "her", "when", "how", "what"])


def interests_in(messages: Sequence[str]) -> list[str]:
    """Topics the user says they love, enjoy or are into, in order of first mention."""
    found: dict[str, str] = {}
    for text in messages:
        for match in _INTEREST.finditer(text):
            for part in _AND.split(match.group("topics")):
                topic = part.strip().lower()
                words = topic.split()
                if 0 < len(words) <= 4 and words[0] not in _NOT_TOPIC and topic not in found:
                    found[topic] = topic
    return list(found)
