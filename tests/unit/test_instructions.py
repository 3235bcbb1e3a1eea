"""Rule-based instruction detection and profile updates."""

from __future__ import annotations

import pytest

from memory.instructions import ProfileUpdate, detect_instructions
from memory.profile import apply_updates


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("call me Captain", "Captain"),
        ("Please call me Captain Coder.", "Captain Coder"),
        ("From now on, call me Ada", "Ada"),
        ("ok, you can call me Sam", "Sam"),
        ("Hi! Call me Sam and answer like a pirate", "Sam"),
    ],
)
def test_call_me_sets_the_name(text: str, name: str) -> None:
    updates = detect_instructions(text)
    assert updates[0] == ProfileUpdate(
        "preferred_name", "set", name, f'asked to be called "{name}"'
    )


@pytest.mark.parametrize(
    "text",
    [
        "my friend calls me Captain",
        "they used to call me Captain at school",
        "Why would anyone call me that?",
        "what's the weather like",
        "I always forget my keys",
    ],
)
def test_look_alikes_change_nothing(text: str) -> None:
    assert [u for u in detect_instructions(text) if u.field == "preferred_name"] == []


@pytest.mark.parametrize("text", ["stop calling me Captain", "Please don't call me that anymore"])
def test_revocation_unsets_the_name(text: str) -> None:
    assert detect_instructions(text)[0].op == "unset"


def test_standing_instruction_is_added_once() -> None:
    updates = detect_instructions("From now on answer in French.")
    assert updates == [
        ProfileUpdate("instructions", "add", "answer in French", "standing instruction")
    ]
    profile = apply_updates({}, updates)
    assert apply_updates(profile, updates) == {"instructions": ["answer in French"]}


def test_apply_updates_is_pure() -> None:
    before = {"preferred_name": "Cap", "instructions": ["be brief"]}
    after = apply_updates(before, [ProfileUpdate("preferred_name", "unset", None, "r")])
    assert before == {"preferred_name": "Cap", "instructions": ["be brief"]}
    assert after == {"instructions": ["be brief"]}
