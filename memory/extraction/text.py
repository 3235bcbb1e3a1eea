"""Text helpers shared by the rule-based memory extractors: sentences, clauses, phrases.

Pure string functions. They decide where a sentence or clause ends, what the leading filler
of a clause is ("well, actually, last week ..."), and where the value of a statement ends
("sushi" in "I love sushi but not sashimi"), and they turn first-person words into third
person so a memory reads as a statement about the user.
"""

from __future__ import annotations

import re
from typing import Literal

from memory.extraction.dates import DATE_EXPRESSION

Kind = Literal["fact", "preference", "instruction"]
Statement = tuple[Kind, str, str | None]
"""What a rule found: kind, third-person text, slot."""

FLAGS = re.IGNORECASE


def words(text: str) -> frozenset[str]:
    """The set of whitespace-separated words in ``text`` (for word-list constants)."""
    return frozenset(text.split())


DATE_WORDS = words(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december last next this i i'm"
)
_PLACE_LINKS = words("de da do dos das del la le of upon am sur y")
_BAD_OBJECT = re.compile(
    r"^(?:it|that|this|these|those|them|you|your|yours|him|her|one|when|how|what|the\s+way|"
    r"to\s+(?:think|say|believe|know)|a\s+lot|so\s+much|at|in|for|with|from|about|on)\b",
    FLAGS,
)
_CONNECTIVE = re.compile(
    r"\s*[,;:()\[\]]|\s+-\s|\s+(?:but|because|since|so|although|though|which|who|where|when|"
    r"while|if|as|until|unless|whereas|not|and\s+(?:i|my|we)|with\s+my)\b",
    FLAGS,
)
_TRAILING = re.compile(
    r"\s+(?:now|too|as\s+well|a\s+lot|so\s+much|very\s+much|these\s+days|nowadays|currently|"
    r"at\s+the\s+moment|right\s+now|lately|though|actually|really|anyway|honestly|anymore|"
    r"any\s+more)$",
    FLAGS,
)
_FILLER = re.compile(
    r"^(?:(?:well|so|ok|okay|oh|hey|hi|hello|also|and|but|plus|actually|anyway|btw|by\s+the\s+"
    r"way|fyi|yes|yeah|yep|now|just\s+so\s+you\s+know|for\s+the\s+record|for\s+context|fun\s+"
    r"fact|as\s+of\s+now|these\s+days|nowadays|currently|honestly|basically|from\s+now\s+on|"
    r"going\s+forward)\b|\(\s*[^)]*\))[\s,:;!.-]*",
    FLAGS,
)
_PRONOUNS = {"my": "their", "me": "them", "myself": "themselves", "mine": "theirs", "i": "they"}
_PRONOUN = re.compile(r"\b(?:my|me|myself|mine|i)\b", FLAGS)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n+\s*")
_ABBREVIATION = re.compile(
    r"\b(?:mr|mrs|ms|dr|st|mt|ft|prof|sr|jr|vs|etc|e\.g|i\.e|approx)\.$", FLAGS
)
_CLAUSE_BREAK = re.compile(
    r"\s*;\s*|,?\s+(?:and|but|plus|also|so)\s+(?=(?:i|i'm|i've|we|my)\b)"
    r"|,\s*(?=(?:i|i'm|i've|we|my)\b)",
    FLAGS,
)
_ANYMORE = re.compile(r"\b(?:anymore|any\s+more|no\s+longer|no\s+more)\b", FLAGS)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, keeping their end punctuation ("St. Louis" stays whole)."""
    text = text.replace("’", "'").replace("‘", "'")
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = re.sub(r"\s+", " ", piece).strip()
        if not piece:
            continue
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


def split_clauses(sentence: str) -> list[str]:
    """Split a sentence where a new first-person clause starts ("..., and I work at X").

    A piece that is only filler or a time phrase ("Last week, I moved ...") stays with the
    clause after it, so the clause keeps its date.
    """
    clauses: list[str] = []
    pending = ""
    for piece in _CLAUSE_BREAK.split(sentence):
        piece = piece.strip() if piece else ""
        if not piece:
            continue
        if not strip_lead(piece):
            pending = f"{pending}{piece}, "
            continue
        clauses.append(pending + piece)
        pending = ""
    return clauses


def strip_lead(clause: str) -> str:
    """Drop leading fillers and time phrases: "Well, last week (…) I moved" → "I moved"."""
    previous = None
    while previous != clause:
        previous = clause
        match = _FILLER.match(clause) or DATE_EXPRESSION.match(clause)
        if match and match.end() > 0:
            clause = clause[match.end() :].lstrip(" ,")
    return clause.rstrip(" .!")


def says_no_longer(clause: str) -> bool:
    """Whether the clause says something stopped being true ("anymore", "no longer")."""
    return bool(_ANYMORE.search(clause))


def cut(value: str) -> str:
    """The head of ``value`` before a connective, a date or a trailing filler word."""
    for pattern in (_CONNECTIVE, DATE_EXPRESSION):
        match = pattern.search(value)
        if match:
            value = value[: match.start()]
    previous = None
    while previous != value:
        previous, value = value, _TRAILING.sub("", value.strip()).rstrip(" .!?\"'")
    return value


def third_person(value: str) -> str:
    """Rewrite first-person words: "my job" → "their job"."""
    return _PRONOUN.sub(lambda m: _PRONOUNS[m.group(0).lower()], value)


def slot_key(value: str) -> str:
    """A slot suffix for ``value``: lowercased, without article or punctuation."""
    value = re.sub(r"^(?:the|a|an|my|their|some)\s+", "", value.strip().lower())
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s'-]", "", value)).strip()


def object_phrase(value: str, max_words: int = 6) -> str | None:
    """A liked or learned thing: a short phrase, not a pronoun or a preposition."""
    value = cut(value)
    if not value or _BAD_OBJECT.match(value) or len(value.split()) > max_words:
        return None
    return third_person(value)


def proper_noun(value: str, max_words: int = 4) -> str | None:
    """The leading proper noun of ``value`` ("the Netherlands", "Rio de Janeiro"), if any."""
    tokens = cut(value).split()
    kept: list[str] = []
    if len(tokens) > 1 and tokens[0].lower() == "the" and tokens[1][:1].isupper():
        kept.append(tokens.pop(0).lower())
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.lower() in _PLACE_LINKS and kept and nxt[:1].isupper():
            kept.append(token)
            continue
        if not token[:1].isupper() or token.lower().rstrip(".") in DATE_WORDS:
            break
        kept.append(token)
    names = [t for t in kept if t.lower() != "the"]
    if not names or len(names) > max_words:
        return None
    return " ".join(kept).rstrip(".!?")


def article(noun: str) -> str:
    """``a`` or ``an`` for ``noun`` (by its first letter)."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def squash(text: str) -> str:
    """Collapse runs of whitespace and lowercase."""
    return re.sub(r"\s+", " ", text).strip().lower()
