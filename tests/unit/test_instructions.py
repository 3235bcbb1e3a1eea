"""Rule-based instruction detection, the persona document and style statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evals.suites.instructions.data import CASES
from evals.suites.instructions.suite import matches, score
from memory.persona.document import apply_updates, directives, instruction_texts, normalize
from memory.persona.instructions import ProfileUpdate, detect_instructions
from memory.persona.style import compute_style, style_hints

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("call me Captain", "Captain"),
        ("Please call me Captain Coder.", "Captain Coder"),
        ("From now on, call me Ada", "Ada"),
        ("ok, you can call me Sam", "Sam"),
        ("Hi! Call me Sam and answer like a pirate", "Sam"),
        ("call me captain coder", "Captain Coder"),
        ("I'd like you to address me as Dr. Patel", "Dr. Patel"),
    ],
)
def test_call_me_sets_the_name(text: str, name: str) -> None:
    updates = detect_instructions(text)
    assert (updates[0].field, updates[0].op, updates[0].value) == ("preferred_name", "set", name)
    assert updates[0].reason == f'asked to be called "{name}"'


def test_one_message_can_carry_several_instructions() -> None:
    got = detect_instructions("From now on call me Captain Coder and answer like a pirate.")
    assert [(u.field, u.value) for u in got] == [
        ("preferred_name", "Captain Coder"),
        ("tone", "like a pirate"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "my friend calls me Captain",
        "they used to call me Captain at school",
        "Why would anyone call me that?",
        "what's the weather like",
        "I always forget my keys",
        "Call me later, I'm busy.",
        'The novel starts with "Call me Ishmael."',
        "I always answer emails in French at work.",
        "My sister never uses emoji.",
    ],
)
def test_look_alikes_change_nothing(text: str) -> None:
    assert detect_instructions(text) == []


@pytest.mark.parametrize("text", ["stop calling me Captain", "Please don't call me that anymore"])
def test_revocation_unsets_the_name(text: str) -> None:
    assert detect_instructions(text)[0].op == "unset"


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("Always answer in French.", "language", "French"),
        ("Stop using emoji.", "formatting.emoji", False),
        ("shorter answers please", "verbosity", "brief"),
        ("No bullet points.", "formatting.lists", False),
        ("Be more formal with me.", "formality", "formal"),
    ],
)
def test_preferences_map_to_profile_fields(text: str, field: str, value: object) -> None:
    (update,) = detect_instructions(text)
    assert (update.field, update.op, update.value) == (field, "set", value)
    assert update.rule  # memory extraction files it as an instruction too


def test_every_labelled_dev_and_test_case_passes() -> None:
    # The rules were written against these; holdout2 (blind) is only scored in evals/.
    seen = [c for c in CASES if c.split in ("dev", "test", "holdout1")]
    result = score(seen)
    assert (result.misses, result.false_alarms) == ([], [])


def test_matches_compares_free_text_loosely_and_scalars_exactly() -> None:
    rule = ProfileUpdate("instructions", "add", "Always cite your sources", "r")
    assert matches(("instructions", "add", "cite your sources"), rule)
    assert not matches(("language", "set", "French"), ProfileUpdate("language", "set", "Fr", "r"))


def test_standing_instruction_is_added_once_with_its_source() -> None:
    updates = detect_instructions("From now on, end every answer with a question.")
    profile = apply_updates({}, updates, source_turn_id="turn_1", now=NOW)
    again = apply_updates(profile, updates, source_turn_id="turn_2", now=NOW)
    assert again == profile
    (rule,) = profile["instructions"]
    assert rule["text"] == "End every answer with a question"
    assert rule["source_turn_id"] == "turn_1"
    assert rule["created_at"] == NOW.isoformat()


def test_revoking_a_rule_removes_the_best_match_only() -> None:
    profile = apply_updates(
        {},
        [
            ProfileUpdate("instructions", "add", "End every answer with a question", "r"),
            ProfileUpdate("instructions", "add", "Use metric units", "r"),
        ],
    )
    stop = detect_instructions("Stop ending every answer with a question.")
    assert instruction_texts(apply_updates(profile, stop)) == ["Use metric units"]
    unrelated = [ProfileUpdate("instructions", "remove", "talking about cats", "r")]
    assert apply_updates(profile, unrelated) == profile


def test_apply_updates_is_pure_and_reads_legacy_profiles() -> None:
    before = {"preferred_name": "Cap", "instructions": ["be brief"]}
    after = apply_updates(before, [ProfileUpdate("preferred_name", "unset", None, "r")])
    assert before == {"preferred_name": "Cap", "instructions": ["be brief"]}
    assert instruction_texts(after) == ["be brief"]
    assert "preferred_name" not in after
    assert normalize(before)["instructions"][0]["id"].startswith("ins_")


def test_directives_say_every_preference() -> None:
    profile = apply_updates(
        {},
        detect_instructions(
            "Call me Ada. Always answer in French. Stop using emoji. Be brief. No markdown."
        ),
    )
    text = " ".join(directives(profile))
    for needle in ("Ada", "French", "Never use emoji", "short", "plain text"):
        assert needle in text


def test_style_statistics_and_hints() -> None:
    terse = compute_style(["ok 👍", "sure thing 😀", "nah", "lol ok 😂"])
    assert terse["messages"] == 4
    assert terse["emoji_rate"] == 0.75
    assert terse["avg_words"] <= 2
    hints = style_hints(terse)
    assert any("short" in h for h in hints) and any("emoji" in h for h in hints)
    assert style_hints(compute_style(["Hello."])) == []  # too few messages to trust
    assert compute_style([]) == {"messages": 0}
