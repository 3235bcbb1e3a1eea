"""Deleting a user while their reply is generating stops it: 410, nothing recorded."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, func, select

from memory.records.tables import Turn
from tests.conftest import ADMIN_KEY, Api
from tests.fakes import ScriptedBackend

CHAT = "/v1/chat/completions"


def _body(**extra: object) -> dict[str, object]:
    return {"model": "attune", "messages": [{"role": "user", "content": "a long one"}], **extra}


async def _turns(api: Api, user_id: str) -> int:
    with Session(api.services.engine) as session:
        return session.exec(
            select(func.count())
            .select_from(Turn)
            .where(Turn.user_id == user_id, Turn.role == "assistant")
        ).one()


async def test_a_plain_chat_answers_410_and_a_stream_ends_with_the_reason(
    api: Api, backend: ScriptedBackend
) -> None:
    backend.gate = asyncio.Event()  # every reply waits after its first token
    uid, key = api.new_user("leaving")
    plain = asyncio.create_task(api.client.post(CHAT, json=_body(), headers=api.auth(key)))
    streamed = asyncio.create_task(
        api.client.post(CHAT, json=_body(stream=True), headers=api.auth(key))
    )
    await asyncio.sleep(0.5)  # both are generating, paused mid-reply
    assert len(api.services.runner._by_user.get(uid, ())) >= 1
    r = await api.client.delete(f"/v1/users/{uid}", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 202, r.text
    answered = await asyncio.wait_for(plain, timeout=30)
    assert answered.status_code == 410, answered.text
    assert "deleted" in answered.json()["error"]["message"]
    stream = await asyncio.wait_for(streamed, timeout=30)
    assert stream.status_code == 200  # its headers went out before the deletion
    assert "was deleted" in stream.text and stream.text.rstrip().endswith("data: [DONE]")
    assert await _turns(api, uid) == 0  # no reply recorded, no foreign-key error
    assert not api.services.runner._by_user.get(uid)
    backend.gate.set()

    # Another user's turn is untouched by the deletion.
    _, other = api.new_user("staying")
    ok = await api.client.post(CHAT, json=_body(), headers=api.auth(other))
    assert ok.status_code == 200, ok.text
