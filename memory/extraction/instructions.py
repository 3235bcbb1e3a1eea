"""Standing instructions in a user's sentence, as semantic memories.

Reuses :func:`memory.persona.instructions.detect_instructions` (the per-turn detector behind the
profile) for "call me X" and "from now on / going forward / always ...", and adds the forms
it leaves out: "never ...", "don't ...", "please answer in X", "... from now on" at the end
of a sentence, and "keep your answers short". An instruction must read as a command to the
assistant (its first word is an imperative verb), so "never mind", "don't worry" and
"always happy to help" are not instructions.
"""

from __future__ import annotations

import re

from memory.extraction.text import FLAGS, Statement, words
from memory.persona.instructions import ProfileUpdate, detect_instructions

_IMPERATIVE = words(
    "answer reply respond write talk speak use be keep give include add show explain call "
    "address refer remind ask avoid start end format cite mention put sign say tell list spell "
    "translate correct check stop make try provide offer assume treat remember stick limit skip "
    "summarize summarise suggest recommend greet open close quote number not never"
)
_POLITE = r"(?:please|pls|kindly|can\s+you|could\s+you|would\s+you|will\s+you)"
_RULE_LEAD = re.compile(
    rf"^(?:{_POLITE}|you\s+(?:should|must|need\s+to|have\s+to|can|will)|always|"
    r"i\s+(?:want|need|would\s+like)\s+you\s+to|i'd\s+like\s+you\s+to)\s+",
    FLAGS,
)
_NEVER = re.compile(
    r"^(?:please\s+)?(?P<neg>never|don't|do\s+not)(?:\s+ever)?\s+(?P<rule>.+)$", FLAGS
)
_ANSWER_IN = re.compile(
    rf"^(?:{_POLITE}\s+)+(?:always\s+)?(?P<rule>(?:answer|reply|respond|write|talk|speak)"
    r"(?:\s+to\s+me)?\s+(?:only\s+)?in\s+\w+.*)$",
    FLAGS,
)
_TRAILING_STANDING = re.compile(
    r"^(?P<rule>.+?),?\s+(?:from\s+now\s+on|going\s+forward|from\s+here\s+on(?:\s+out)?|"
    r"in\s+(?:the\s+)?future)$",
    FLAGS,
)
_KEEP = re.compile(
    r"^(?:please\s+)?(?:(?:keep|make)\s+(?:your\s+|the\s+)?(?:answers|responses|replies|messages)"
    r"|be(?:\s+more)?)\s+(?P<adj>short|shorter|brief|briefer|concise|long|longer|detailed|"
    r"succinct|terse|thorough)$",
    FLAGS,
)
_LANGUAGE = re.compile(
    r"^(?:answer|reply|respond|write|talk|speak)(?:\s+to\s+(?:me|the\s+user))?\s+(?:only\s+)?"
    r"in\s+(?P<lang>[A-Z][a-z]+)\b"
)
_SLOTS = (
    ("emoji", re.compile(r"\bemojis?\b", FLAGS)),
    (
        "response_length",
        re.compile(
            r"\b(?:short|shorter|brief|briefer|concise|long|longer|detailed|verbose|succinct|"
            r"terse|thorough)\b",
            FLAGS,
        ),
    ),
    ("formality", re.compile(r"\b(?:formal|informal|casual)\b", FLAGS)),
    ("units", re.compile(r"\b(?:metric|imperial)\b", FLAGS)),
)


def match_instructions(sentence: str) -> list[Statement]:
    """The standing instructions one sentence of a user's message gives the assistant.

    Args:
        sentence: One sentence, questions included ("could you call me Sam?").

    Returns:
        ``("instruction", text, slot)`` triples. The slot names what the instruction
        governs (``preferred_name``, ``response_language``, ``response_length``, ``emoji``,
        ``formality``, ``units``) or is ``None`` when nothing can contradict it.
    """
    found: list[Statement] = []
    for update in detect_instructions(sentence):
        if update.field == "preferred_name" and update.op == "set":
            found.append(("instruction", f"The user wants to be called {update.value}.", _NAME))
        elif update.field == "preferred_name":
            text = "The user does not want to be called by a nickname."
            found.append(("instruction", text, _NAME))
        elif update.op in ("set", "add") and (rule := _imperative(_said(update))):
            found.append(_instruction(rule))
    if found:
        return found
    text = sentence.strip().rstrip(" .!?")
    if never := _NEVER.match(text):
        rule = _imperative(never.group("rule"))
        neg = "never" if never.group("neg").lower() == "never" else "not"
        return [_instruction(f"{neg} {rule}")] if rule else []
    if keep := _KEEP.match(text):
        adj = keep.group("adj").lower()
        return [("instruction", f"The user wants the assistant to keep answers {adj}.", _LENGTH)]
    for pattern in (_ANSWER_IN, _TRAILING_STANDING):
        match = pattern.match(text)
        if match and (rule := _imperative(match.group("rule"))):
            return [_instruction(rule)]
    return []


_NAME = "preferred_name"
_LENGTH = "response_length"


def _said(update: ProfileUpdate) -> str:
    """The instruction an update came from, as a command ("answer in French")."""
    if update.rule:
        return update.rule
    return update.value if isinstance(update.value, str) else ""


def _imperative(rule: str) -> str | None:
    """``rule`` as a bare command ("please answer in French" → "answer in French"), or None."""
    rule = rule.strip().rstrip(" .!?,")
    previous = None
    while previous != rule:
        previous, rule = rule, _RULE_LEAD.sub("", rule)
    rule = re.sub(r",?\s+please$", "", rule, flags=FLAGS)
    tokens = rule.split()
    if not tokens or tokens[0].lower() not in _IMPERATIVE:
        return None
    if len(tokens) < 2 or tokens[-1].lower() in ("it", "that", "this", "again"):
        return None  # one-off: "don't do that", "say it again"
    rule = re.sub(r"\bmy\b", "the user's", re.sub(r"\bme\b", "the user", rule, flags=FLAGS))
    return rule[:1].lower() + rule[1:]


def _instruction(rule: str) -> Statement:
    language = _LANGUAGE.match(rule)
    if language:
        text = f"The user wants the assistant to answer in {language.group('lang')}."
        return ("instruction", text, "response_language")
    slot = next((name for name, pattern in _SLOTS if pattern.search(rule)), None)
    return ("instruction", f"The user wants the assistant to {rule}.", slot)
