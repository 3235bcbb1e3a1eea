"""Prompt hygiene: recalled memories say who said them, and withdrawn preferences stay out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from graph.compose import compose, speaker_label
from graph.prompts import PromptLibrary
from graph.state import MemoryItem
from memory.persona.known import known_about
from memory.persona.revoked import RevokedSpan, contradicts
from memory.views import MemoryView
from tests.conftest import Api

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
SPAN = RevokedSpan("preferred_name", "Captain Coder", T0, T0 + timedelta(hours=1))


def test_a_withdrawn_name_or_the_voice_of_its_period_is_not_recalled() -> None:
    later = T0 + timedelta(days=1)
    assert contradicts("I'm Captain Coder, here to help", "assistant", later, [SPAN])
    assert contradicts("my nickname was captain coder", "user", later, [SPAN])
    # the assistant's replies while the name held speak with it, whatever their words
    assert contradicts("Arr, a fine question!", "assistant", T0 + timedelta(minutes=5), [SPAN])
    assert not contradicts("Arr, a fine question!", "user", T0 + timedelta(minutes=5), [SPAN])
    assert not contradicts("Sailing is fun", "assistant", later, [SPAN])


def _memory(id_: str, role: str, text: str, date: str) -> MemoryItem:
    return MemoryItem(id=id_, kind="episodic", role=role, text=text, date=date, score=1.0)


def test_the_prompt_names_the_speaker_and_never_gives_the_user_the_assistants_words() -> None:
    memories = [
        _memory("a", "assistant", "Try the harbour tour.", "2026-11-01"),
        _memory("b", "user", "I sail a sloop.", "2026-11-02"),
        _memory("c", "Caroline", "I went to a support group.", "2023-05-08"),
    ]
    out = compose(
        prompts=PromptLibrary(), version="v3", today=T0, profile={}, memories=memories,
        history=[{"role": "user", "content": "hi"}], client_system=None,
        count_tokens=lambda s: len(s.split()), memory_budget=200, history_budget=100,
        context_window=2048, max_tokens=64,
    )  # fmt: skip
    prompt = out.system_prompt
    assert "2026-11-01, you (the assistant): Try the harbour tour." in prompt
    assert "2026-11-02, the user: I sail a sloop." in prompt
    assert "2023-05-08, Caroline: I went to a support group." in prompt
    assert "Things the user said" not in prompt
    assert speaker_label("assistant") != speaker_label("user")


async def _say(api: Api, key: str, text: str) -> dict[str, Any]:
    body = {"model": "attune", "messages": [{"role": "user", "content": text}]}
    r = await api.client.post("/v1/chat/completions", json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_revoked_name_does_not_come_back_through_recalled_turns(api: Api) -> None:
    uid, key = api.new_user()
    await _say(api, key, "From now on call me Captain Coder.")
    await _say(api, key, "Captain Coder here: my boat is a sloop called Gull.")
    await _say(api, key, "You can stop calling me Captain Coder now, just use my normal name.")
    r = await api.client.post(
        f"/v1/users/{uid}/prompt/preview",
        json={"messages": [{"role": "user", "content": "what is my boat called?"}]},
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    system = r.json()["system_prompt"]
    assert "Captain Coder" not in system
    assert "Address the user as" not in system


def test_what_the_user_said_about_themselves_has_its_own_block() -> None:
    fact = MemoryItem(
        id="f", kind="preference", role="user", text="The user is vegetarian.",
        date="2026-03-02", score=0.0,
    )  # fmt: skip
    turn = _memory("a", "user", "I sail a sloop.", "2026-11-02")
    out = compose(
        prompts=PromptLibrary(), version="v4", today=T0, profile={}, memories=[turn, fact],
        history=[{"role": "user", "content": "hi"}], client_system=None,
        count_tokens=lambda s: len(s.split()), memory_budget=8, history_budget=100,
        context_window=2048, max_tokens=64,
    )  # fmt: skip
    known, _, recalled = out.system_prompt.partition("From earlier conversations")
    assert "- 2026-03-02: The user is vegetarian." in known
    assert "I sail a sloop." in recalled  # the facts' block does not eat the memory budget
    assert [m["id"] for m in out.memories] == ["f", "a"]


def _view(id_: str, kind: str, day: int) -> MemoryView:
    at = T0 + timedelta(days=day)
    return MemoryView(
        id=id_, kind=kind, text=id_, speaker="user", sources=[], created_at=at, valid_from=at,
        invalid_at=None, superseded_by=None,
    )  # fmt: skip


class _Memories:
    def __init__(self, views: list[MemoryView], relevant: list[str]) -> None:
        self.views, self.relevant = views, relevant

    def search(
        self, user_id: str, query: str, *, k: int = 10, kinds: Sequence[str] | None = None
    ) -> list[MemoryView]:
        return [v for v in self.views if v.id in self.relevant and v.kind in (kinds or [])]

    def list(
        self, user_id: str, *, kind: str | None = None, include_invalid: bool = True,
        limit: int = 50, offset: int = 0,
    ) -> tuple[list[MemoryView], int]:  # fmt: skip
        chosen = [v for v in self.views if v.kind == kind]
        return chosen[offset : offset + limit], len(chosen)


def test_known_facts_come_most_relevant_first_then_newest() -> None:
    views = [_view("old-pref", "preference", 1), _view("new-fact", "fact", 9),
             _view("mid-fact", "fact", 5), _view("turn", "episodic", 10)]  # fmt: skip
    got = known_about(_Memories(views, ["old-pref"]), "u", "dinner?", limit=3)
    assert [v.id for v in got] == ["old-pref", "new-fact", "mid-fact"]
