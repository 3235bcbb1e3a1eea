"""Relative date resolution against a turn's timestamp."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from memory.extraction.dates import resolve_relative_dates

# A Sunday afternoon.
AT = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "rewritten", "valid_from"),
    [
        (
            "I moved to Lisbon last week",
            "I moved to Lisbon last week (around 2026-11-15)",
            date(2026, 11, 15),
        ),
        ("yesterday I ran 10k", "yesterday (2026-11-21) I ran 10k", date(2026, 11, 21)),
        ("Yesterday morning, I quit", "Yesterday morning (2026-11-21), I quit", date(2026, 11, 21)),
        ("I slept badly last night", "I slept badly last night (2026-11-21)", date(2026, 11, 21)),
        ("today I start", "today (2026-11-22) I start", date(2026, 11, 22)),
        ("this morning I fell", "this morning (2026-11-22) I fell", date(2026, 11, 22)),
        ("I fly tonight", "I fly tonight (2026-11-22)", date(2026, 11, 22)),
        ("I start tomorrow", "I start tomorrow (2026-11-23)", date(2026, 11, 23)),
        (
            "the day before yesterday",
            "the day before yesterday (2026-11-20)",
            date(2026, 11, 20),
        ),
        ("the day after tomorrow", "the day after tomorrow (2026-11-24)", date(2026, 11, 24)),
        ("3 days ago", "3 days ago (2026-11-19)", date(2026, 11, 19)),
        ("a day ago", "a day ago (2026-11-21)", date(2026, 11, 21)),
        ("a couple of days ago", "a couple of days ago (2026-11-20)", date(2026, 11, 20)),
        ("two weeks ago", "two weeks ago (around 2026-11-08)", date(2026, 11, 8)),
        ("a few weeks ago", "a few weeks ago (around 2026-11-01)", date(2026, 11, 1)),
        ("six months ago", "six months ago (around 2026-05)", date(2026, 5, 22)),
        ("5 years ago", "5 years ago (around 2021)", date(2021, 11, 22)),
        ("last month I quit", "last month (2026-10) I quit", date(2026, 10, 22)),
        ("I got married last year", "I got married last year (2025)", date(2025, 11, 22)),
        ("next week", "next week (around 2026-11-29)", date(2026, 11, 29)),
        ("next month", "next month (2026-12)", date(2026, 12, 22)),
        ("next year", "next year (2027)", date(2027, 11, 22)),
        ("last weekend", "last weekend (around 2026-11-14)", date(2026, 11, 14)),
        ("last Tuesday", "last Tuesday (2026-11-17)", date(2026, 11, 17)),
        ("last Sunday", "last Sunday (2026-11-15)", date(2026, 11, 15)),
        ("next Monday", "next Monday (2026-11-23)", date(2026, 11, 23)),
        ("on Monday I started", "on Monday (2026-11-16) I started", date(2026, 11, 16)),
        ("I will fly on Friday", "I will fly on Friday (2026-11-27)", date(2026, 11, 27)),
        ("I'm flying on Friday", "I'm flying on Friday (2026-11-27)", date(2026, 11, 27)),
        ("LAST WEEK", "LAST WEEK (around 2026-11-15)", date(2026, 11, 15)),
        ("I've lived here since 2019", "I've lived here since 2019", date(2019, 1, 1)),
        ("I was born in 1990", "I was born in 1990", date(1990, 1, 1)),
    ],
)
def test_relative_expressions_get_absolute_dates(
    text: str, rewritten: str, valid_from: date
) -> None:
    out, when = resolve_relative_dates(text, AT)
    assert out == rewritten
    assert when == datetime(valid_from.year, valid_from.month, valid_from.day, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "I live in Lisbon",
        "over the last year I learned a lot",
        "for the last week I have been sick",
        "the past month was hard",
        "today's weather is nice",
        "my last name is Silva",
        "at last!",
        "I need 3 days off",
        "in 1492 Columbus sailed",  # not a plausible year for a personal fact
        "",
    ],
)
def test_text_without_a_relative_date_is_unchanged(text: str) -> None:
    assert resolve_relative_dates(text, AT) == (text, None)


def test_resolution_is_idempotent() -> None:
    once, when = resolve_relative_dates("I moved last week and started a job yesterday", AT)
    assert once == (
        "I moved last week (around 2026-11-15) and started a job yesterday (2026-11-21)"
    )
    assert resolve_relative_dates(once, AT) == (once, when)


def test_the_first_expression_gives_valid_from() -> None:
    out, when = resolve_relative_dates("Yesterday I said I would move next week", AT)
    assert out == "Yesterday (2026-11-21) I said I would move next week (around 2026-11-29)"
    assert when == datetime(2026, 11, 21, tzinfo=UTC)


def test_the_turn_timezone_decides_the_day() -> None:
    lisbon_winter = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 22, 0, 30, tzinfo=lisbon_winter)  # still the 21st in UTC
    out, when = resolve_relative_dates("yesterday", at)
    assert out == "yesterday (2026-11-21)"
    assert when == datetime(2026, 11, 21, tzinfo=lisbon_winter)


def test_naive_timestamps_give_naive_dates() -> None:
    _, when = resolve_relative_dates("yesterday", datetime(2026, 1, 1, 9))
    assert when == datetime(2025, 12, 31)


def test_month_arithmetic_clamps_to_month_end() -> None:
    at = datetime(2026, 3, 31, tzinfo=UTC)
    out, when = resolve_relative_dates("last month", at)
    assert out == "last month (2026-02)"
    assert when == datetime(2026, 2, 28, tzinfo=UTC)
    _, leap = resolve_relative_dates("a year ago", datetime(2028, 2, 29, tzinfo=UTC))
    assert leap == datetime(2027, 2, 28, tzinfo=UTC)


def test_weekday_on_the_same_weekday_means_a_week_away() -> None:
    monday = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert resolve_relative_dates("last Monday", monday)[1] == datetime(2026, 11, 16, tzinfo=UTC)
    assert resolve_relative_dates("next Monday", monday)[1] == datetime(2026, 11, 30, tzinfo=UTC)
