"""PII scrubbing: each kind is removed, plain text stays."""

from __future__ import annotations

import pytest

from adapters.pii import ADDRESS, CARD, EMAIL, PHONE, SECRET, luhn_ok, scrub

CASES = [
    ("email", "Write to jane.doe+work@example.co.uk tomorrow.", "jane.doe", EMAIL),
    ("phone", "Call me on +1 (415) 555-0132 after six.", "555-0132", PHONE),
    ("phone", "My number is 020 7946 0958.", "7946", PHONE),
    ("card", "Card: 4111 1111 1111 1111, exp 12/29.", "4111", CARD),
    ("card", "Pay with 5500-0000-0000-0004 please", "5500", CARD),
    ("address", "I live at 221B Baker Street, London.", "Baker", ADDRESS),
    ("address", "Ship it to 1600 Pennsylvania Avenue NW.", "Pennsylvania", ADDRESS),
    ("address", "Send mail to P.O. Box 4521 instead.", "4521", ADDRESS),
    ("secret", "my key is sk-proj-AbCdEf0123456789XyZ0123456", "AbCdEf", SECRET),
    ("secret", "password=hunter2 and api_key: 9f8e7d6c5b4a", "hunter2", SECRET),
    ("secret", "Authorization: Bearer abcdefghijklmnop.qrstuvwx", "abcdefghijklmnop", SECRET),
    (
        "secret",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "eyJ",
        SECRET,
    ),
    ("secret", "AWS AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE", SECRET),
]


@pytest.mark.parametrize(("kind", "text", "gone", "placeholder"), CASES)
def test_each_kind_is_replaced(kind: str, text: str, gone: str, placeholder: str):
    result = scrub(text)
    assert gone not in result.text
    assert placeholder in result.text
    assert result.counts[kind] >= 1


def test_secret_assignment_keeps_the_key_name():
    assert scrub("password=hunter2").text == f"password={SECRET}"


@pytest.mark.parametrize(
    "text",
    [
        "Boil the egg for 6 minutes, then cool it in cold water.",
        "The meeting moved to 3 pm on 12/05/2026; bring 2 copies.",
        "Order 1234567890123 shipped (not a valid card number).",
        "I have 3 dogs on the way home and 42 cats at the farm.",
        "Version 2.14.3 fixed bug #4521 in 2025.",
        "Arr matey! Ye be a fine sailor, savvy? 😄🎉",
    ],
)
def test_plain_text_is_kept(text: str):
    result = scrub(text)
    assert result.text == text
    assert sum(result.counts.values()) == 0


def test_mixed_text_keeps_its_prose():
    text = "Hi, I'm Sam (sam@mail.org, 555-867-5309). Loved the pancake recipe!"
    out = scrub(text).text
    assert out == f"Hi, I'm Sam ({EMAIL}, {PHONE}). Loved the pancake recipe!"


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")
