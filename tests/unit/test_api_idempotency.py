"""``Idempotency-Key``: a repeated chat request gets the first response and records nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import Session, func, select

from memory.export import delete_turn
from memory.records.tables import IdempotentRequest, Turn
from tests.conftest import ADMIN_KEY, Api

CHAT = "/v1/chat/completions"
IDEM = "Idempotency-Key"


def _body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "attune", "messages": [{"role": "user", "content": text}], **extra}


def _turns(api: Api) -> int:
    with Session(api.services.engine) as session:
        return session.exec(select(func.count()).select_from(Turn)).one()


async def test_a_repeat_gets_the_first_response_and_records_nothing(api: Api) -> None:
    _, key = api.new_user()
    headers = {**api.auth(key), "Idempotency-Key": "order-42"}
    first = await api.client.post(CHAT, json=_body(), headers=headers)
    assert first.status_code == 200, first.text
    recorded = _turns(api)
    again = await api.client.post(CHAT, json=_body(), headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _turns(api) == recorded  # nothing recorded twice
    other = await api.client.post(CHAT, json=_body("something else"), headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.text
    fresh = await api.client.post(CHAT, json=_body(), headers={**headers, "Idempotency-Key": "x"})
    assert fresh.status_code == 200 and fresh.json()["id"] != first.json()["id"]


async def test_keys_are_per_user_and_must_be_well_formed(api: Api) -> None:
    _, alice = api.new_user("alice")
    _, bob = api.new_user("bob")
    a = await api.client.post(
        CHAT, json=_body(), headers={**api.auth(alice), "Idempotency-Key": "k"}
    )
    b = await api.client.post(CHAT, json=_body(), headers={**api.auth(bob), "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 200
    assert a.json()["attune"]["turn_id"] != b.json()["attune"]["turn_id"]  # bob's own turn
    for bad in ("", "has space", "x" * 201):
        r = await api.client.post(
            CHAT, json=_body(), headers={**api.auth(alice), "Idempotency-Key": bad}
        )
        assert r.status_code == 400 and "Idempotency-Key" in r.text, r.text


async def test_concurrent_repeats_wait_for_the_first_and_a_stream_is_replayed(api: Api) -> None:
    _, key = api.new_user()
    headers = {**api.auth(key), "Idempotency-Key": "twice-at-once"}
    before = _turns(api)
    both = await asyncio.gather(
        *(api.client.post(CHAT, json=_body("at once"), headers=headers) for _ in range(2))
    )
    assert [r.status_code for r in both] == [200, 200]
    assert both[0].json() == both[1].json()
    assert _turns(api) == before + 2  # one user turn, one reply

    streamed = {**headers, "Idempotency-Key": "streamed"}
    body = _body("stream it", stream=True, stream_options={"include_usage": True})
    first = await api.client.post(CHAT, json=body, headers=streamed)
    recorded = _turns(api)
    again = await api.client.post(CHAT, json=body, headers=streamed)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _turns(api) == recorded

    def text(sse: str) -> str:
        import json

        out = ""
        for line in sse.splitlines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    out += choice["delta"].get("content") or ""
        return out

    assert text(again.text) == text(first.text) != ""
    assert again.text.rstrip().endswith("data: [DONE]") and '"usage"' in again.text


async def test_deleting_a_turn_of_the_request_forgets_the_stored_response(api: Api) -> None:
    uid, key = api.new_user()
    headers = {**api.auth(key), "Idempotency-Key": "to-forget"}
    r = await api.client.post(CHAT, json=_body("secret words"), headers=headers)
    turn_id = r.json()["attune"]["turn_id"]
    services = api.services
    assert delete_turn(services.engine, services.memory, uid, turn_id) is not None
    with Session(services.engine) as session:
        assert session.exec(select(IdempotentRequest)).all() == []
    r = await api.client.delete(f"/v1/users/{uid}", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 202, r.text
