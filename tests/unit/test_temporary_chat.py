"""Temporary chats: no memory read, nothing stored, the profile's instructions still apply."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import func, select

from memory.records.jobs import Job
from memory.records.tables import Memory, ProfileChange, Thread, Turn
from tests.conftest import Api

CHAT = "/v1/chat/completions"


def _body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "attune", "messages": [{"role": "user", "content": text}], **extra}


def _counts(api: Api) -> dict[str, int]:
    with api.services.store.session() as s:
        return {
            t.__name__: int(s.exec(select(func.count()).select_from(t)).one())
            for t in (Turn, Thread, Memory, ProfileChange, Job)
        }


async def test_a_temporary_chat_reads_no_memory_and_stores_nothing(api: Api, backend) -> None:
    _, key = api.new_user()
    auth = api.auth(key)
    r = await api.client.post(
        CHAT, json=_body("Call me Skipper. My dog is called Rex."), headers=auth
    )
    assert r.status_code == 200, r.text
    await api.client.post(CHAT, json=_body("I love sailing on Lake Geneva."), headers=auth)
    await api.client.post(CHAT, json=_body("What is my dog called?"), headers=auth)
    assert "Rex" in str(backend.calls[-1][0].text)  # a normal chat recalls it
    before = _counts(api)
    temporary = {"attune": {"temporary": True}}
    r = await api.client.post(CHAT, json=_body("What is my dog called?", **temporary), headers=auth)
    assert r.status_code == 200, r.text
    info = r.json()["attune"]
    assert info["temporary"] is True and info["thread_id"].startswith("tmp_")
    system = str(backend.calls[-1][0].text)
    assert "Rex" not in system and "Geneva" not in system  # no memory read
    assert "Skipper" in system  # the profile's name still applies
    # "call me …" in a temporary chat shapes this reply only.
    r = await api.client.post(CHAT, json=_body("Call me Captain.", **temporary), headers=auth)
    assert "Address the user as Captain." in str(backend.calls[-1][0].text)
    streamed = await api.client.post(
        CHAT, json=_body("Tell me a joke", stream=True, **temporary), headers=auth
    )
    assert streamed.status_code == 200
    chunks = [
        json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")
    ]
    assert chunks[-1]["attune"]["temporary"] is True
    assert _counts(api) == before  # no turn, thread, memory, profile change or job
    snapshot = await api.services.runner.graph.aget_state(
        {"configurable": {"thread_id": info["thread_id"]}}
    )
    assert not snapshot.values  # no thread state either
    r = await api.client.post(CHAT, json=_body("And now?"), headers=auth)
    assert "Address the user as Skipper." in str(backend.calls[-1][0].text)
    fb = await api.client.post(
        "/v1/feedback", json={"turn_id": info["turn_id"], "rating": "up"}, headers=auth
    )
    assert fb.status_code == 404  # its ids name nothing


async def test_what_a_temporary_chat_cannot_do_is_refused_by_name(api: Api) -> None:
    _, key = api.new_user()
    auth = api.auth(key)
    r = await api.client.post(CHAT, json=_body("hi"), headers=auth)
    thread_id, turn_id = r.json()["attune"]["thread_id"], r.json()["attune"]["turn_id"]
    temporary = {"temporary": True}
    cases = [
        (_body("hi", thread_id=thread_id, attune=temporary), "cannot continue a stored thread"),
        (_body("hi", attune={**temporary, "regenerate": turn_id}), "cannot regenerate"),
        (_body("hi", attune={"temporary": "yes"}), "attune.temporary"),
    ]
    for body, message in cases:
        r = await api.client.post(CHAT, json=body, headers=auth)
        assert r.status_code == 400 and message in r.text, r.text
    keyed = {**auth, "Idempotency-Key": "k1"}
    r = await api.client.post(CHAT, json=_body("hi", attune=temporary), headers=keyed)
    assert r.status_code == 400 and "drop Idempotency-Key" in r.text
