"""Memory tools driven by a scripted tool-calling model through the real graph."""

from __future__ import annotations

import json

from sqlmodel import select

from memory.records.tables import Memory
from tests.conftest import Api


async def test_tools_remember_search_and_forget_for_the_keys_user_only(api: Api, backend) -> None:
    alice, alice_key = api.new_user("alice")
    bob, bob_key = api.new_user("bob")
    backend.supports_tools = True
    backend.tool_script = [[{"name": "remember", "args": {"text": "Bob's secret is 42"}}]]
    await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "note my secret"}]},
        headers=api.auth(bob_key),
    )
    # The model tries to reach Bob's memory by naming him; the tool has no such parameter.
    backend.tool_script = [
        [{"name": "remember", "args": {"text": "The user likes jazz", "user_id": bob}}],
        [{"name": "search_memory", "args": {"query": "secret jazz", "user_id": bob}}],
    ]
    r = await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "remember I like jazz"}]},
        headers=api.auth(alice_key),
    )
    assert r.status_code == 200, r.text
    assert backend.bound_tools == ["search_memory", "remember", "forget"]
    reply = r.json()["choices"][0]["message"]["content"]
    found = json.loads(reply.removeprefix("echo: "))
    texts = [m["text"] for m in found]
    assert "The user likes jazz" in texts and "Bob's secret is 42" not in texts
    with api.services.store.session() as s:
        owners = {m.text: m.user_id for m in s.exec(select(Memory)).all()}
    assert owners["The user likes jazz"] == alice and owners["Bob's secret is 42"] == bob

    jazz = next(m for m in found if m["text"] == "The user likes jazz")
    backend.tool_script = [[{"name": "forget", "args": {"memory_id": jazz["id"]}}]]
    r = await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "forget that"}]},
        headers=api.auth(alice_key),
    )
    assert r.json()["choices"][0]["message"]["content"] == "echo: forgotten"
    # Alice cannot make a tool forget Bob's memory by id either.
    with api.services.store.session() as s:
        bobs = s.exec(select(Memory).where(Memory.text == "Bob's secret is 42")).one()
    backend.tool_script = [[{"name": "forget", "args": {"memory_id": bobs.id}}]]
    r = await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "forget it"}]},
        headers=api.auth(alice_key),
    )
    assert r.json()["choices"][0]["message"]["content"].startswith("echo: error: no memory")
    with api.services.store.session() as s:
        assert s.get(Memory, bobs.id) is not None


async def test_backends_without_tool_support_are_not_offered_tools(api: Api, backend) -> None:
    _, key = api.new_user()
    await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=api.auth(key),
    )
    assert backend.bound_tools == []
