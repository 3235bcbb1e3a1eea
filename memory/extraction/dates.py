"""Resolve relative time expressions ("last week", "3 days ago") against a turn's timestamp.

A memory outlives the turn it came from, so "I moved to Lisbon last week" must not be stored
as-is: read a month later, "last week" would be wrong. :func:`resolve_relative_dates`
keeps the words the user chose and appends the absolute date they meant, with the precision
the phrase carries:

* a day ("yesterday", "last Tuesday", "3 days ago") → ``yesterday (2026-11-21)``;
* a week ("last week", "2 weeks ago") → ``last week (around 2026-11-15)``;
* a month ("last month") → ``last month (2026-10)``; "3 months ago" → ``(around 2026-08)``;
* a year ("last year") → ``last year (2025)``; "5 years ago" → ``(around 2021)``.

It also returns the date the statement became true, when the text states one: the first
resolved expression, or an explicit year ("since 2019", "in 2019"), as midnight of that day
in the timezone of ``at``. For week, month and year phrases the date is ``at`` moved back
by the phrase's offset (a point estimate, as "around" says).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

Precision = Literal["day", "week", "month", "year"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "couple of": 2,
    "a few": 3,
    "few": 3,
    "several": 3,
}
_NUM = (
    r"(?:a\s+couple\s+of|couple\s+of|a\s+few|few|several|an?|one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve|\d{1,3})"
)
_DAYPART = r"(?:\s+(?:morning|afternoon|evening|night))?"
_WEEKDAY = "(?:" + "|".join(_WEEKDAYS) + ")"

# One alternation, longest phrases first, so finditer picks "the day before yesterday"
# over "yesterday" and "last night" over a bare "last".
_EXPR = re.compile(
    r"\b(?:"
    rf"(?P<ago>(?P<ago_n>{_NUM})\s+(?P<ago_unit>day|week|month|year)s?\s+ago)"
    r"|(?P<before_yesterday>the\s+day\s+before\s+yesterday)"
    r"|(?P<after_tomorrow>the\s+day\s+after\s+tomorrow)"
    rf"|(?P<yesterday>yesterday{_DAYPART}|last\s+night)"
    r"|(?P<today>today|tonight|this\s+(?:morning|afternoon|evening))"
    rf"|(?P<tomorrow>tomorrow{_DAYPART})"
    # "over the last year" and "the past month" are durations, not points in time.
    r"|(?<!\bthe\s)(?<!\bpast\s)(?P<last>last\s+(?P<last_unit>weekend|week|month|year))"
    r"|(?P<next>next\s+(?P<next_unit>weekend|week|month|year))"
    rf"|(?P<weekday>(?P<wd_rel>last|next|this|on)\s+(?P<wd_name>{_WEEKDAY}))"
    r"|(?P<year>(?:since|in)\s+(?P<year_n>(?:19|20)\d\d))"
    r")\b(?!['’])",
    re.IGNORECASE,
)
DATE_EXPRESSION = _EXPR
"""The relative (and "since/in <year>") time expressions this module resolves."""
_ALREADY = re.compile(r"\s*\((?:around\s+)?\d{4}")
_FUTURE = re.compile(
    r"\b(?:will|shall|gonna|going\s+to|plan(?:ning)?\s+to|about\s+to)\b|'ll\b"
    r"|\b(?:i'm|i\s+am|we're|we\s+are)\s+\w+ing\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Resolved:
    day: date
    precision: Precision
    approximate: bool
    annotate: bool = True

    def label(self) -> str:
        if self.precision in ("day", "week"):
            text = self.day.isoformat()
        elif self.precision == "month":
            text = f"{self.day:%Y-%m}"
        else:
            text = f"{self.day:%Y}"
        return f"(around {text})" if self.approximate else f"({text})"


def resolve_relative_dates(text: str, at: datetime) -> tuple[str, datetime | None]:
    """Rewrite relative time expressions in ``text`` to absolute dates as of ``at``.

    Args:
        text: A statement, typically one sentence of a user's turn.
        at: When it was said (the turn's timestamp); its timezone is kept.

    Returns:
        ``text`` with a parenthesized absolute date after each relative expression
        (expressions already followed by one are left alone, so this is idempotent), and
        the date the statement became true when it states one, else ``None``.
    """
    out: list[str] = []
    valid_from: datetime | None = None
    last = 0
    for match in _EXPR.finditer(text):
        resolved = _resolve(match, at.date(), future=bool(_FUTURE.search(text)))
        if valid_from is None:
            valid_from = datetime(
                resolved.day.year, resolved.day.month, resolved.day.day, tzinfo=at.tzinfo
            )
        out.append(text[last : match.end()])
        last = match.end()
        if resolved.annotate and not _ALREADY.match(text, match.end()):
            out.append(" " + resolved.label())
    out.append(text[last:])
    return "".join(out), valid_from


def _resolve(match: re.Match[str], today: date, *, future: bool) -> _Resolved:
    # For nested groups the outer one closes last, so lastgroup names the alternative.
    kind = match.lastgroup
    if kind in _SIMPLE:
        return _Resolved(today + timedelta(days=_SIMPLE[kind]), "day", approximate=False)
    if kind == "ago":
        n = _number(match.group("ago_n"))
        unit = match.group("ago_unit").lower()
        return _shift(today, unit, -n, approximate=unit != "day")
    if kind in ("last", "next"):
        unit = match.group(f"{kind}_unit").lower()
        sign = -1 if kind == "last" else 1
        if unit == "weekend":
            return _Resolved(_weekend(today, sign), "day", approximate=True)
        # "last month" names a whole month and "last year" a whole year: no "around".
        return _shift(today, unit, sign, approximate=unit == "week")
    if kind == "weekday":
        wanted = _WEEKDAYS.index(match.group("wd_name").lower())
        rel = match.group("wd_rel").lower()
        forward = rel == "next" or (rel in ("on", "this") and future)
        return _Resolved(_nearest_weekday(today, wanted, forward=forward), "day", False)
    year = int(match.group("year_n"))
    return _Resolved(date(year, 1, 1), "year", approximate=False, annotate=False)


_SIMPLE = {
    "before_yesterday": -2,
    "yesterday": -1,
    "today": 0,
    "tomorrow": 1,
    "after_tomorrow": 2,
}


def _number(word: str) -> int:
    word = re.sub(r"\s+", " ", word.lower())
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _shift(today: date, unit: str, n: int, *, approximate: bool) -> _Resolved:
    if unit == "day":
        return _Resolved(today + timedelta(days=n), "day", approximate)
    if unit == "week":
        return _Resolved(today + timedelta(weeks=n), "week", approximate)
    if unit == "month":
        return _Resolved(_add_months(today, n), "month", approximate)
    return _Resolved(_add_months(today, 12 * n), "year", approximate)


def _add_months(day: date, n: int) -> date:
    """``day`` moved by ``n`` calendar months, clamped to the month's end (Mar 31 - 1 → Feb 28)."""
    month0 = day.year * 12 + day.month - 1 + n
    year, month = divmod(month0, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _nearest_weekday(today: date, weekday: int, *, forward: bool) -> date:
    """The closest ``weekday`` strictly after (``forward``) or strictly before ``today``."""
    if forward:
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)


def _weekend(today: date, sign: int) -> date:
    """The Saturday of the last completed (or the next) weekend."""
    saturday = 5
    if sign < 0:
        back = _nearest_weekday(today, saturday, forward=False)
        # On a Sunday, "last weekend" is the one before the weekend still under way.
        return back - timedelta(weeks=1) if today.weekday() == 6 else back
    return _nearest_weekday(today, saturday, forward=True)
