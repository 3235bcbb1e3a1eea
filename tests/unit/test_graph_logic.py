"""Pure parts of the graph: routing, prompt composition and budgets, recall ranking, prompts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from graph.compose import Composed, PromptTooLongError, compose
from graph.conversation import conversation_hash
from graph.prompts import DECLARED_VARIABLES, PromptLibrary, PromptNotFoundError
from graph.routing import choose_route
from graph.state import MemoryItem

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("model", "user", "group", "available", "target"),
    [
        ("attune", None, None, set(), "base"),
        ("attune", "u", "g", {"u", "g"}, "user:u"),
        ("attune", "u", "g", {"g"}, "group:g"),
        ("attune", None, "g", {"g"}, "group:g"),
        ("attune", "u", None, set(), "base"),
        ("attune-base", "u", "g", {"u", "g"}, "base"),
    ],
)
def test_route(model, user, group, available, target) -> None:
    route = choose_route(
        requested_model=model,
        user_adapter=user,
        group_adapter=group,
        is_available=available.__contains__,
    )
    assert route["target"] == target
    if user and user not in available and model == "attune":
        assert "not available" in route["reason"]


def _compose(**kw: Any) -> Composed:
    args: dict[str, Any] = dict(
        prompts=PromptLibrary(),
        version="v1",
        today=NOW,
        profile={},
        memories=[],
        history=[{"role": "user", "content": "hi"}],
        client_system=None,
        count_tokens=words,
        memory_budget=100,
        history_budget=100,
        context_window=2048,
        max_tokens=64,
    )
    args.update(kw)
    return compose(**args)


def _memory(i: int, text: str) -> MemoryItem:
    return MemoryItem(
        id=f"m{i}", kind="episodic", role="user", text=text, date="2026-11-01", score=1.0
    )


def test_compose_keeps_instructions_and_fits_memories_to_budget() -> None:
    memories = [_memory(i, "word " * 30) for i in range(5)]
    out = _compose(
        profile={"preferred_name": "Captain", "instructions": ["answer like a pirate"]},
        memories=memories,
        memory_budget=80,
    )
    assert "Captain" in out.system_prompt and "answer like a pirate" in out.system_prompt
    assert [m["id"] for m in out.memories] == ["m0", "m1"]
    assert out.system_prompt.count("2026-11-01:") == 2


def test_compose_drops_oldest_history_first_but_never_the_new_message() -> None:
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "x " * 20}
        for i in range(10)
    ]
    history.append({"role": "user", "content": "new"})
    out = _compose(history=history, history_budget=60)
    sent = [m["content"].split()[0] for m in out.messages[1:]]
    assert sent == ["m8", "m9", "new"]


def test_compose_refuses_a_message_that_cannot_fit() -> None:
    with pytest.raises(PromptTooLongError, match="max_tokens"):
        _compose(history=[{"role": "user", "content": "x " * 3000}], context_window=2048)


_EXAMPLE = {
    "prompt": "What is a monad?",
    "reply": "A monad is a monoid in the category of endofunctors.",
    "rating": "down",
    "edited_text": "Think of it as a wrapper with a rule for chaining steps.",
    "comment": "too abstract",
}
PROMPT_SAMPLES: dict[str, tuple[dict[str, Any], list[str]]] = {
    # name → (a value for every declared variable, texts the rendering must contain)
    "system": (
        {
            "today": "Sunday",
            "preferred_name": "Ada",
            "directives": ["Address the user as Ada."],
            "instructions": ["be brief"],
            "learned": "Prefer concrete examples.",
            "known": [
                {
                    "text": "The user is vegetarian.",
                    "date": "2026-01-02",
                    "role": "user",
                    "who": "the user",
                }
            ],
            "memories": [
                {"text": "likes tea", "date": "2026-01-01", "role": "user", "who": "the user"}
            ],
            "style_hints": ["The user writes very short messages."],
            "interests": ["chess"],
            "client_system": "be kind",
        },
        ["Ada", "likes tea", "be brief", "be kind"],
    ),
    "instruction_detect": ({}, ["standing instructions", '{"updates": []}']),
    "procedural_critique": (
        {"current": "Be brief.", "examples": [_EXAMPLE]},
        ["Be brief.", "monad", "too abstract", "wrapper"],
    ),
    "procedural_rewrite": (
        {"current": None, "critique": "Wants plain words.", "examples": [_EXAMPLE]},
        ["Wants plain words.", "monad", "wrapper"],
    ),
    "extraction": (
        {"now": "2026-03-01T09:30", "speaker": "assistant", "subject": None},
        ["2026-03-01T09:30", "written by the assistant", "It is the assistant's reply", "slot"],
    ),
    "summary": ({}, ["Summarize the conversation", "third person"]),
}


def test_every_prompt_version_renders_with_its_declared_variables() -> None:
    lib = PromptLibrary()
    assert lib.names() == sorted(DECLARED_VARIABLES) == sorted(PROMPT_SAMPLES)
    for name in lib.names():
        assert lib.versions(name)
        sample, expected = PROMPT_SAMPLES[name]
        assert set(sample) == DECLARED_VARIABLES[name]
        for version in lib.versions(name):
            assert lib.variables(name, version) <= DECLARED_VARIABLES[name]
            text = lib.render(name, version, sample)
            assert all(e in text for e in expected), (name, version)
            assert "{{" not in text and "{%" not in text


def test_unknown_prompt_version_is_a_clear_error() -> None:
    with pytest.raises(PromptNotFoundError, match="no version 'v99'"):
        PromptLibrary().render("system", "v99", {})


def test_conversation_hash_depends_on_roles_and_order() -> None:
    a = conversation_hash([("user", "hi"), ("assistant", "yo")])
    assert a == conversation_hash([("user", "hi "), ("assistant", "yo")])
    assert a != conversation_hash([("assistant", "hi"), ("user", "yo")])
