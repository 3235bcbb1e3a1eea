"""Model output every store can keep: a NUL the model emits never reaches a database."""

from __future__ import annotations

from sqlmodel import select

from memory.records.tables import Turn
from tests.conftest import Api


async def test_a_nul_in_a_reply_is_replaced_before_it_is_sent_or_stored(api: Api, backend) -> None:
    backend.script = "before\x00after"
    _, key = api.new_user()
    body = {"model": "attune", "messages": [{"role": "user", "content": "hi"}]}
    r = await api.client.post("/v1/chat/completions", json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert "\x00" not in content and "\ufffd" in content
    with api.services.store.session() as s:
        reply = s.exec(select(Turn).where(Turn.role == "assistant")).one()
        assert reply.content == content
