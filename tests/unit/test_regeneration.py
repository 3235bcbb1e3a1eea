"""Regeneration over HTTP (scripted chat model): another reply to a recorded prompt, sent
exactly as it was, recorded beside the original, in the original's place in the thread
only when the original was the thread's last word."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from memory.pairs import prompt_of
from memory.records.tables import Turn
from tests.conftest import Api
from tests.fakes import ScriptedBackend

CHAT = "/v1/chat/completions"
ANOTHER = "Another answer entirely."


async def _chat(api: Api, key: str, messages: list[dict[str, str]], **extra: Any) -> Any:
    r = await api.client.post(CHAT, json={"messages": messages, **extra}, headers=api.auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def _regenerate(api: Api, key: str, turn_id: str) -> Any:
    return await _chat(api, key, [_user("(ignored)")], attune={"regenerate": turn_id})


async def _thread_ids(api: Api, thread_id: str) -> list[str | None]:
    return [m.id for m in await api.services.runner.thread_messages(thread_id)]


async def test_regenerating_the_last_reply_takes_its_place(api: Api, backend: ScriptedBackend):
    _, key = api.new_user()
    first = await _chat(api, key, [_user("Hello there")])
    thread = first["attune"]["thread_id"]
    second = await _chat(api, key, [_user("Tell me more")], thread_id=thread)
    original = second["attune"]["turn_id"]
    sent_first = [m.text for m in backend.calls[-1]]
    backend.script = ANOTHER

    regen = await _regenerate(api, key, original)
    info = regen["attune"]
    assert regen["choices"][0]["message"]["content"] == ANOTHER
    assert info["thread_id"] == thread and info["turn_id"] != original
    assert info["target"] == second["attune"]["target"] == "base"
    assert info["prompt_version"] == second["attune"]["prompt_version"]
    assert info["memory_ids"] == []
    assert [m.text for m in backend.calls[-1]] == sent_first  # the stored prompt, as sent

    ids = await _thread_ids(api, thread)
    assert ids[-1] == info["turn_id"] and original not in ids
    with Session(api.services.engine) as session:
        old, new = session.get(Turn, original), session.get(Turn, info["turn_id"])
        assert old is not None and new is not None
        assert new.reply_to_id == old.reply_to_id and new.content == ANOTHER
        assert new.model_target == old.model_target and new.prompt_version == old.prompt_version
        stored = prompt_of(session, info["turn_id"])
        assert stored is not None and [m["content"] for m in stored.messages] == sent_first

    # A client that carries on from the regenerated reply continues the same thread.
    history = [
        _user("Hello there"),
        {"role": "assistant", "content": first["choices"][0]["message"]["content"]},
        _user("Tell me more"),
        {"role": "assistant", "content": ANOTHER},
        _user("And then?"),
    ]
    assert (await _chat(api, key, history))["attune"]["thread_id"] == thread


async def test_regenerating_an_earlier_reply_leaves_the_thread_as_it_was(
    api: Api, backend: ScriptedBackend
):
    _, key = api.new_user()
    first = await _chat(api, key, [_user("One")])
    thread = first["attune"]["thread_id"]
    await _chat(api, key, [_user("Two")], thread_id=thread)
    before = await _thread_ids(api, thread)
    backend.script = ANOTHER

    regen = await _regenerate(api, key, first["attune"]["turn_id"])
    assert regen["attune"]["thread_id"] == thread
    assert await _thread_ids(api, thread) == before
    with Session(api.services.engine) as session:
        new = session.get(Turn, regen["attune"]["turn_id"])
        assert new is not None and new.content == ANOTHER and new.thread_id == thread


async def test_a_streamed_regeneration_ends_with_its_turn(api: Api, backend: ScriptedBackend):
    _, key = api.new_user()
    first = await _chat(api, key, [_user("Stream me")])
    backend.script = ANOTHER
    r = await api.client.post(
        CHAT,
        json={
            "messages": [_user("(ignored)")],
            "stream": True,
            "attune": {"regenerate": first["attune"]["turn_id"]},
        },
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    assert r.text.rstrip().endswith("data: [DONE]")
    with Session(api.services.engine) as session:
        asked = _asked(session, first)
        replies = session.exec(select(Turn).where(Turn.reply_to_id == asked)).all()
    assert sorted(t.content for t in replies) == sorted(
        [first["choices"][0]["message"]["content"], ANOTHER]
    )
    assert any(t.id in r.text for t in replies if t.content == ANOTHER)


def _asked(session: Session, reply: Any) -> str | None:
    turn = session.get(Turn, reply["attune"]["turn_id"])
    return turn.reply_to_id if turn is not None else None
