"""Chat API logic with a scripted model: threads, recording, streaming, the attune object."""

from __future__ import annotations

import json

from sqlmodel import select

from memory.records.tables import Thread, Turn
from tests.conftest import Api


def _chat(content: str, **extra):
    return {"model": "attune", "messages": [{"role": "user", "content": content}], **extra}


async def test_plain_chat_records_the_turn(api: Api) -> None:
    uid, key = api.new_user()
    r = await api.client.post(
        "/v1/chat/completions", json=_chat("hello there"), headers=api.auth(key)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "echo: hello there"
    meta = body["attune"]
    assert meta["target"] == "base" and meta["prompt_version"] == "v4"
    assert (
        body["usage"]["total_tokens"]
        == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    with api.services.store.session() as s:
        turns = s.exec(select(Turn).where(Turn.thread_id == meta["thread_id"])).all()
    by_role = {t.role: t for t in turns}
    assert by_role["user"].content == "hello there" and by_role["user"].user_id == uid
    assistant = by_role["assistant"]
    assert assistant.id == meta["turn_id"] and assistant.reply_to_id == by_role["user"].id
    assert assistant.model_target == "base" and assistant.prompt_version == "v4"
    assert assistant.completion_tokens == body["usage"]["completion_tokens"]
    assert assistant.latency_ms is not None and assistant.ttft_ms is not None


async def test_thread_id_continues_with_history(api: Api, backend) -> None:
    _, key = api.new_user()
    first = (
        await api.client.post("/v1/chat/completions", json=_chat("one"), headers=api.auth(key))
    ).json()
    thread = first["attune"]["thread_id"]
    r = await api.client.post(
        "/v1/chat/completions", json=_chat("two", thread_id=thread), headers=api.auth(key)
    )
    assert r.json()["attune"]["thread_id"] == thread
    sent = [m.text for m in backend.calls[-1]]
    assert sent[1:] == ["one", "echo: one", "two"]


async def test_whole_conversation_resent_continues_thread_and_records_once(
    api: Api, backend
) -> None:
    _, key = api.new_user()
    msgs = [{"role": "user", "content": "first"}]
    a = (
        await api.client.post(
            "/v1/chat/completions", json={"messages": msgs}, headers=api.auth(key)
        )
    ).json()
    msgs += [
        {"role": "assistant", "content": a["choices"][0]["message"]["content"]},
        {"role": "user", "content": "second"},
    ]
    b = (
        await api.client.post(
            "/v1/chat/completions", json={"messages": msgs}, headers=api.auth(key)
        )
    ).json()
    assert b["attune"]["thread_id"] == a["attune"]["thread_id"]
    with api.services.store.session() as s:
        contents = [t.content for t in s.exec(select(Turn).where(Turn.role == "user")).all()]
    assert sorted(contents) == ["first", "second"]
    # The model saw the history once, not twice.
    assert [m.text for m in backend.calls[-1]][1:] == ["first", "echo: first", "second"]


async def test_unknown_history_starts_a_seeded_thread(api: Api, backend) -> None:
    _, key = api.new_user()
    msgs = [
        {"role": "user", "content": "from elsewhere"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "now"},
    ]
    r = await api.client.post(
        "/v1/chat/completions", json={"messages": msgs}, headers=api.auth(key)
    )
    assert r.status_code == 200
    assert [m.text for m in backend.calls[-1]][1:] == ["from elsewhere", "ok", "now"]
    with api.services.store.session() as s:
        assert len(s.exec(select(Turn)).all()) == 2  # only the new exchange is a recorded turn


async def test_streaming_sends_tokens_then_attune_then_done(api: Api) -> None:
    _, key = api.new_user()
    async with api.client.stream(
        "POST",
        "/v1/chat/completions",
        json=_chat("stream me please", stream=True, stream_options={"include_usage": True}),
        headers=api.auth(key),
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "echo: stream me please"
    final = [c for c in chunks if c.get("attune")]
    assert len(final) == 1 and final[0]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    with api.services.store.session() as s:
        assert s.get(Turn, final[0]["attune"]["turn_id"]) is not None


async def test_client_system_message_is_kept_after_attune_prompt(api: Api, backend) -> None:
    _, key = api.new_user()
    msgs = [{"role": "system", "content": "Answer in haiku."}, {"role": "user", "content": "hi"}]
    await api.client.post("/v1/chat/completions", json={"messages": msgs}, headers=api.auth(key))
    system = backend.calls[-1][0].text
    assert system.startswith("You are Attune") and system.rstrip().endswith("Answer in haiku.")


async def test_call_me_holds_from_the_next_turn_in_another_thread(api: Api, backend) -> None:
    _, key = api.new_user()
    await api.client.post(
        "/v1/chat/completions", json=_chat("Please call me Captain."), headers=api.auth(key)
    )
    assert "Captain" in backend.calls[-1][0].text  # this turn already
    await api.client.post("/v1/chat/completions", json=_chat("what's up"), headers=api.auth(key))
    assert "Address the user as Captain" in backend.calls[-1][0].text


async def test_recall_brings_earlier_threads(api: Api, backend) -> None:
    _, key = api.new_user()
    await api.client.post(
        "/v1/chat/completions", json=_chat("my cat is named Biscuit"), headers=api.auth(key)
    )
    r = await api.client.post(
        "/v1/chat/completions", json=_chat("what is my cat named?"), headers=api.auth(key)
    )
    assert r.json()["attune"]["memory_ids"]
    assert "Biscuit" in backend.calls[-1][0].text


async def test_models_lists_logical_models(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.get("/v1/models", headers=api.auth(key))
    assert [m["id"] for m in r.json()["data"]] == ["attune", "attune-base"]


async def test_route_prefers_user_adapter_then_group(api: Api, backend) -> None:
    uid, key = api.new_user()
    from memory.records.tables import User, UserGroup

    backend.adapters.update({"u1", "g1"})
    with api.services.store.session() as s:
        g = UserGroup(name="g", adapter_name="g1")
        s.add(g)
        s.flush()
        user = s.get(User, uid)
        user.group_id = g.id
        s.commit()
    r = await api.client.post("/v1/chat/completions", json=_chat("hi"), headers=api.auth(key))
    assert r.json()["attune"]["target"] == "group:g1"
    with api.services.store.session() as s:
        s.get(User, uid).adapter_name = "u1"
        s.commit()
    r = await api.client.post("/v1/chat/completions", json=_chat("hi"), headers=api.auth(key))
    assert r.json()["attune"]["target"] == "user:u1" and backend.requested_adapters[-1] == "u1"
    r = await api.client.post(
        "/v1/chat/completions", json=_chat("hi", model="attune-base"), headers=api.auth(key)
    )
    assert r.json()["attune"]["target"] == "base" and backend.requested_adapters[-1] is None


async def test_preview_shows_prompt_without_generating_or_recording(api: Api, backend) -> None:
    uid, key = api.new_user()
    r = await api.client.post(
        f"/v1/users/{uid}/prompt/preview",
        json={"messages": [{"role": "user", "content": "call me Ace"}]},
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Ace" in body["system_prompt"] and body["route"]["target"] == "base"
    assert body["messages"][-1] == {"role": "user", "content": "call me Ace"}
    assert body["profile_updates"][0]["field"] == "preferred_name"
    assert backend.calls == []
    with api.services.store.session() as s:
        assert s.exec(select(Turn)).all() == [] and s.exec(select(Thread)).all() == []
    # Nothing was persisted, so the profile is unchanged.
    r = await api.client.post(
        f"/v1/users/{uid}/prompt/preview",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=api.auth(key),
    )
    assert "Ace" not in r.json()["system_prompt"]


async def test_metrics_and_health(api: Api) -> None:
    _, key = api.new_user()
    await api.client.post("/v1/chat/completions", json=_chat("hi"), headers=api.auth(key))
    assert (await api.client.get("/healthz")).json()["status"] == "ok"
    r = await api.client.get("/metrics", headers=api.auth("att_test_admin_key"))
    assert r.status_code == 200
    assert 'attune_turns_total{outcome="ok",target="base"} 1.0' in r.text
    assert "attune_http_requests_total" in r.text
    # Read from the database: no worker runs here, so the turn's distill job waits.
    assert 'attune_jobs{kind="distill",status="queued"} 1.0' in r.text
    age = next(ln for ln in r.text.splitlines() if ln.startswith("attune_jobs_oldest_queued"))
    assert float(age.split()[-1]) >= 0.0
