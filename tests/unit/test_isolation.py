"""One user's key never reaches another user's data, whatever the path or the body says."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from memory.records.tables import ApiKey, Profile, Thread, Turn
from tests.conftest import ADMIN_KEY, Api
from tests.fakes import ScriptedBackend

CHAT = "/v1/chat/completions"
NOBODY = "usr_0123456789abcdef0123456789abcdef"  # shaped like a real id, but no one's
FACT = "my cat is named Zanzibarquux"


def _user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


async def chat(api: Api, key: str, *messages: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await api.client.post(
        CHAT, json={"messages": list(messages), **extra}, headers=api.auth(key)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def turns_of(api: Api, user_id: str) -> list[Turn]:
    with api.services.store.session() as s:
        return list(s.exec(select(Turn).where(Turn.user_id == user_id)).all())


def thread_owner(api: Api, thread_id: str) -> str | None:
    with api.services.store.session() as s:
        thread = s.get(Thread, thread_id)
        return thread.user_id if thread is not None else None


def seen_by_model(backend: ScriptedBackend, call: int = -1) -> str:
    """Everything the model got in one call, system prompt included."""
    return "\n".join(m.text for m in backend.calls[call])


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/v1/users/{uid}"), ("POST", "/v1/users/{uid}/prompt/preview")],
)
async def test_user_key_on_another_users_routes_is_404_like_no_user(
    api: Api, method: str, path: str
) -> None:
    _, key_a = api.new_user("alice")
    uid_b, key_b = api.new_user("bob")
    body = {"messages": [_user("hello")]}
    theirs = await api.client.request(
        method, path.format(uid=uid_b), json=body, headers=api.auth(key_a)
    )
    nobody = await api.client.request(
        method, path.format(uid=NOBODY), json=body, headers=api.auth(key_a)
    )
    assert theirs.status_code == nobody.status_code == 404
    # The same answer, down to the words: a key cannot tell "exists" from "does not".
    expected = nobody.json()["error"]
    expected["message"] = expected["message"].replace(NOBODY, uid_b)
    assert theirs.json() == {"error": expected}
    assert theirs.json()["error"]["param"] == "user_id"
    assert theirs.headers.keys() == nobody.headers.keys()
    # Bob and his key are untouched.
    r = await api.client.post(
        f"/v1/users/{uid_b}/prompt/preview", json=body, headers=api.auth(key_b)
    )
    assert r.status_code == 200, r.text


async def test_cannot_continue_another_users_thread_by_id(
    api: Api, backend: ScriptedBackend
) -> None:
    uid_a, key_a = api.new_user("alice")
    _, key_b = api.new_user("bob")
    thread_b = (await chat(api, key_b, _user(FACT)))["attune"]["thread_id"]
    calls = len(backend.calls)
    history_b = await api.services.runner.thread_messages(thread_b)

    r = await api.client.post(
        CHAT,
        json={"messages": [_user("what did I say?")], "thread_id": thread_b},
        headers=api.auth(key_a),
    )
    unknown = await api.client.post(
        CHAT,
        json={"messages": [_user("what did I say?")], "thread_id": "thr_" + "0" * 32},
        headers=api.auth(key_a),
    )
    assert r.status_code == unknown.status_code == 404
    assert r.json()["error"]["message"] == f"no thread {thread_b!r} for this user"
    assert r.json()["error"]["type"] == unknown.json()["error"]["type"] == "not_found_error"
    # Preview refuses it the same way.
    r = await api.client.post(
        f"/v1/users/{uid_a}/prompt/preview",
        json={"messages": [_user("what did I say?")], "thread_id": thread_b},
        headers=api.auth(key_a),
    )
    assert r.status_code == 404
    assert len(backend.calls) == calls
    assert turns_of(api, uid_a) == []
    assert await api.services.runner.thread_messages(thread_b) == history_b


async def test_resending_another_users_conversation_starts_a_new_thread(
    api: Api, backend: ScriptedBackend
) -> None:
    uid_a, key_a = api.new_user("alice")
    uid_b, key_b = api.new_user("bob")
    first = await chat(api, key_b, _user("bob's opening line"))
    thread_b = first["attune"]["thread_id"]
    reply = first["choices"][0]["message"]["content"]
    await chat(api, key_b, _user("bob's private follow-up"), thread_id=thread_b)

    # Alice sends exactly Bob's first exchange: for Bob this would match his thread.
    resent = [_user("bob's opening line"), {"role": "assistant", "content": reply}]
    out = await chat(api, key_a, *resent, _user("and then?"))
    thread_a = out["attune"]["thread_id"]
    assert thread_a != thread_b
    assert thread_owner(api, thread_a) == uid_a and thread_owner(api, thread_b) == uid_b
    # The model saw what Alice sent and nothing of Bob's thread beyond it.
    sent = [m.text for m in backend.calls[-1]]
    assert sent[1:] == ["bob's opening line", reply, "and then?"]
    assert "private follow-up" not in seen_by_model(backend)
    assert {t.thread_id for t in turns_of(api, uid_a)} == {thread_a}
    assert len(await api.services.runner.thread_messages(thread_b)) == 4


async def test_recall_never_returns_another_users_turns(api: Api, backend: ScriptedBackend) -> None:
    uid_a, key_a = api.new_user("alice")
    uid_b, key_b = api.new_user("bob")
    await chat(api, key_b, _user(FACT))
    # Memories now carry their own ids; Bob's are everything his turns produced.
    b_turns = {m.id for m in api.services.memory.list(uid_b, limit=500)[0]}
    assert b_turns

    out = await chat(api, key_a, _user("what is my cat named? Zanzibarquux maybe?"))
    assert not set(out["attune"]["memory_ids"]) & b_turns
    system = backend.calls[-1][0].text
    assert FACT not in system
    r = await api.client.post(
        f"/v1/users/{uid_a}/prompt/preview",
        json={"messages": [_user("what is my cat named?")]},
        headers=api.auth(key_a),
    )
    assert r.status_code == 200
    assert FACT not in r.json()["system_prompt"]
    assert not {m["id"] for m in r.json()["memories"]} & b_turns

    # The control: Bob, asking the same, does get his fact back.
    out = await chat(api, key_b, _user("what is my cat named?"))
    assert set(out["attune"]["memory_ids"]) & b_turns
    assert "Zanzibarquux" in backend.calls[-1][0].text


async def test_user_field_in_the_body_does_not_change_whose_data(
    api: Api, backend: ScriptedBackend
) -> None:
    uid_a, key_a = api.new_user("alice")
    uid_b, key_b = api.new_user("bob")
    await chat(api, key_b, _user(FACT))
    await chat(api, key_b, _user("Please call me Captain."))

    out = await chat(api, key_a, _user("what is my cat named?"), user=uid_b)
    assert thread_owner(api, out["attune"]["thread_id"]) == uid_a
    assert {t.user_id for t in turns_of(api, uid_a)} == {uid_a}
    assert len(turns_of(api, uid_b)) == 4
    system = backend.calls[-1][0].text
    assert "Zanzibarquux" not in system and "Captain" not in system
    assert out["attune"]["memory_ids"] == []

    r = await api.client.post(
        f"/v1/users/{uid_a}/prompt/preview",
        json={"messages": [_user("what is my cat named?")], "user": uid_b, "user_id": uid_b},
        headers=api.auth(key_a),
    )
    assert r.status_code == 200
    assert "Zanzibarquux" not in r.json()["system_prompt"]
    assert "Captain" not in r.json()["system_prompt"]


async def test_admin_can_preview_and_delete_any_user(worker_api: Api) -> None:
    api = worker_api
    uid_b, key_b = api.new_user("bob")
    await chat(api, key_b, _user("Please call me Captain."))
    admin = api.auth(ADMIN_KEY)
    r = await api.client.post(
        f"/v1/users/{uid_b}/prompt/preview", json={"messages": [_user("hi")]}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert "Captain" in r.json()["system_prompt"]  # composed from Bob's profile
    r = await api.client.delete(f"/v1/users/{uid_b}", headers=admin)
    assert r.status_code == 202
    assert (await api.wait_job(r.json()["id"]))["status"] == "succeeded"
    r = await api.client.delete(f"/v1/users/{uid_b}", headers=admin)
    assert r.status_code == 404


@pytest.mark.parametrize("deleter", ["admin", "self"])
async def test_deleting_a_user_removes_all_of_theirs_and_nothing_else(
    worker_api: Api, backend: ScriptedBackend, deleter: str
) -> None:
    api = worker_api
    uid_a, key_a = api.new_user("alice")
    uid_b, key_b = api.new_user("bob")
    thread_a = (await chat(api, key_a, _user("alice likes tea")))["attune"]["thread_id"]
    thread_b = (await chat(api, key_b, _user(FACT)))["attune"]["thread_id"]
    await chat(api, key_b, _user("Please call me Captain."), thread_id=thread_b)
    assert await api.services.runner.thread_messages(thread_b)

    key = ADMIN_KEY if deleter == "admin" else key_b
    r = await api.client.delete(f"/v1/users/{uid_b}", headers=api.auth(key))
    assert r.status_code == 202, r.text
    # The key stops working and the thread state goes at once; the rest in the job.
    assert await api.services.runner.thread_messages(thread_b) == []
    job = await api.wait_job(r.json()["id"])
    assert job["status"] == "succeeded", job

    with api.services.store.session() as s:
        for table in (Turn, Thread, ApiKey, Profile):
            rows = s.exec(select(table).where(table.user_id == uid_b)).all()
            assert rows == [], table.__name__
    assert await api.services.runner.thread_messages(thread_b) == []
    r = await api.client.post(CHAT, json={"messages": [_user("hi")]}, headers=api.auth(key_b))
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"

    # Alice keeps everything and can still chat; Bob's thread id is nobody's now.
    assert len(turns_of(api, uid_a)) == 2
    assert len(await api.services.runner.thread_messages(thread_a)) == 2
    out = await chat(api, key_a, _user("more tea please"), thread_id=thread_a)
    assert out["attune"]["thread_id"] == thread_a
    assert "Zanzibarquux" not in seen_by_model(backend)
    r = await api.client.post(
        CHAT, json={"messages": [_user("hi")], "thread_id": thread_b}, headers=api.auth(key_a)
    )
    assert r.status_code == 404
