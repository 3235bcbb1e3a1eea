"""Scrubbing personal data out of text before it is written into a training dataset.

A plain, rule-based pass: e-mail addresses, phone numbers, payment card numbers (only
digit runs that pass the Luhn check, so order numbers survive), street addresses and
secrets (API keys, bearer tokens, JWTs, private-key blocks, ``password=…`` style
assignments) become placeholders such as ``[EMAIL]``. Rules run most specific first, so a
card number is never half-eaten as a phone number. What a rule cannot see (a name in
running prose) stays: this reduces what a dataset holds, it does not anonymize it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
ADDRESS = "[ADDRESS]"
SECRET = "[SECRET]"


@dataclass
class ScrubResult:
    """Scrubbed text and how many of each kind were replaced."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum used by payment cards.

    Args:
        digits: Digits only.

    Returns:
        ``True`` for a valid checksum.
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# Well-known key shapes: OpenAI/Anthropic style sk-, GitHub, Slack, AWS, Google, Stripe.
_KEY_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|att_[A-Za-z0-9_-]{16,})"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{12,}")
# key=value / key: value where the key names a secret; the value runs to whitespace.
_ASSIGNMENT = re.compile(
    r"(?i)\b((?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|client[_-]?secret"
    r"|token|auth[_-]?token|access[_-]?token|password|passwd|pwd|pass)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{3,})"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"
    r"\d{3,4}[\s.-]?\d{3,4}(?![\w])"
)
_STREET_WORDS = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl"
    r"|terrace|way|square|sq|parkway|pkwy|highway|hwy|circle|cir"
    r"|strasse|straße|rue|via|calle"
)
_ADDRESS = re.compile(
    # Capitalized name words, so "3 dogs on the way" is not an address.
    rf"\b\d{{1,6}}[A-Za-z]?\s+(?:[A-Z][\w'-]*\.?\s+){{1,4}}(?i:{_STREET_WORDS})\b\.?"
    r"(?i:,?\s*(?:apt|apartment|suite|unit|#)\.?\s*\w+)?"
)
_STREET_FIRST = re.compile(
    r"\b(?:Rue|Via|Calle|Avenida)\s+(?:[A-Z][\w'-]*\s+){0,3}[A-Z][\w'-]*,?\s*\d{1,5}\b"
)
_POSTBOX = re.compile(r"(?i)\bP\.?\s?O\.?\s+Box\s+\d+\b")


def _sub(pattern: re.Pattern[str], text: str, repl: Callable[[re.Match[str]], str]) -> str:
    return pattern.sub(repl, text)


def scrub(text: str) -> ScrubResult:
    """Replace personal data and secrets in ``text`` with placeholders.

    Args:
        text: Any text, e.g. a reply or a writing sample.

    Returns:
        The scrubbed text and per-kind replacement counts (keys ``email``, ``phone``,
        ``card``, ``address``, ``secret``).
    """
    counts: Counter[str] = Counter()

    def replace_with(kind: str, placeholder: str) -> Callable[[re.Match[str]], str]:
        def repl(match: re.Match[str]) -> str:
            counts[kind] += 1
            return placeholder

        return repl

    def assignment(match: re.Match[str]) -> str:
        counts["secret"] += 1
        return match.group(1) + SECRET

    def bearer(match: re.Match[str]) -> str:
        counts["secret"] += 1
        return match.group(1) + SECRET

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            counts["card"] += 1
            return CARD
        return match.group(0)

    # Secrets first: a token may contain what looks like an e-mail or a digit run.
    text = _sub(_PRIVATE_KEY, text, replace_with("secret", SECRET))
    text = _sub(_JWT, text, replace_with("secret", SECRET))
    text = _sub(_KEY_SHAPES, text, replace_with("secret", SECRET))
    text = _sub(_BEARER, text, bearer)
    text = _sub(_ASSIGNMENT, text, assignment)
    text = _sub(_EMAIL, text, replace_with("email", EMAIL))
    text = _sub(_CARD, text, card)
    text = _sub(_PHONE, text, replace_with("phone", PHONE))
    text = _sub(_POSTBOX, text, replace_with("address", ADDRESS))
    text = _sub(_ADDRESS, text, replace_with("address", ADDRESS))
    text = _sub(_STREET_FIRST, text, replace_with("address", ADDRESS))
    return ScrubResult(text=text, counts=counts)


def scrub_text(text: str) -> str:
    """Return ``text`` scrubbed (see :func:`scrub`), without the counts."""
    return scrub(text).text
