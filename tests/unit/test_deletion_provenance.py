"""Deletion reaches the text derived from a turn, and export holds every kind of item.

Over HTTP with the embedded worker. Each deletion test says a unique string once, lets it
flow into a derived item (a later reply's stored prompt, a tool-written memory, a thread
title), deletes the turn and checks the string is gone from that item; the export test
checks the string reaches every section of the export.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from adapters.dataset_sources import snapshot_owner
from adapters.records import AdapterRecord
from memory import pairs
from memory.records.tables import Memory, Thread, Turn
from tests.conftest import Api
from tests.unit.test_feedback_pairs import _chat


async def _delete_turn(api: Api, user: str, key: str, turn_id: str) -> dict[str, Any]:
    r = await api.client.delete(f"/v1/users/{user}/turns/{turn_id}", headers=api.auth(key))
    assert r.status_code == 202, r.text
    job = await api.wait_job(r.json()["id"])
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def _user_turn(api: Api, reply_id: str) -> str:
    with api.services.store.session() as s:
        turn = s.get(Turn, reply_id)
        assert turn is not None and turn.reply_to_id is not None
        return str(turn.reply_to_id)


async def test_deleting_a_turn_deletes_later_prompts_holding_it_and_no_pair_comes_back(
    worker_api: Api,
) -> None:
    api = worker_api
    canary = "okapi-canary-93kx"
    uid, key = api.new_user()
    first = await _chat(api, key, f"My locker code is {canary}.")
    thread = first["attune"]["thread_id"]
    later = await _chat(api, key, "What is a good dinner?", thread)
    reply = later["attune"]["turn_id"]
    await api.drain_jobs()
    with api.services.store.session() as s:
        stored = pairs.prompt_of(s, reply)
        assert stored is not None and canary in json.dumps(stored.messages)
        assert _user_turn(api, first["attune"]["turn_id"]) in stored.source_turn_ids

    await _delete_turn(api, uid, key, _user_turn(api, first["attune"]["turn_id"]))
    with api.services.store.session() as s:
        assert pairs.prompt_of(s, reply) is None
    # Feedback on the later reply finds no prompt to build a pair from.
    r = await api.client.post(
        "/v1/feedback",
        json={"turn_id": reply, "rating": "down", "edited_text": "Soup."},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text
    await api.drain_jobs()
    r = await api.client.get(f"/v1/users/{uid}/preference-pairs", headers=api.auth(key))
    assert canary not in r.text


async def test_a_remembered_memory_and_a_thread_title_go_with_their_turn(
    worker_api: Api, backend: Any
) -> None:
    api = worker_api
    canary = "narwhal-canary-51pz"
    uid, key = api.new_user()
    backend.supports_tools = True
    backend.tool_script = [[{"name": "remember", "args": {"text": f"The user's pin is {canary}"}}]]
    out = await _chat(api, key, f"Please remember my pin {canary}")
    backend.supports_tools = False
    thread = out["attune"]["thread_id"]
    await _chat(api, key, "And a second question.", thread)
    asked = _user_turn(api, out["attune"]["turn_id"])
    with api.services.store.session() as s:
        written = s.exec(select(Memory).where(Memory.text.contains(canary))).all()  # type: ignore[attr-defined]
        assert any(m.speaker == "assistant" for m in written)
        title = s.get(Thread, thread)
        assert title is not None and canary in (title.title or "")
    await api.drain_jobs()

    await _delete_turn(api, uid, key, asked)
    with api.services.store.session() as s:
        assert s.exec(select(Memory).where(Memory.text.contains(canary))).all() == []  # type: ignore[attr-defined]
        thread_row = s.get(Thread, thread)
        assert thread_row is not None and thread_row.title == "And a second question."


async def test_export_holds_every_kind_of_item(worker_api: Api) -> None:
    api = worker_api
    canary = "pangolin-canary-4c7m"
    uid, key = api.new_user()
    _, bkey = api.new_user("bob")
    first = await _chat(api, key, f"My cat is called {canary}.")
    thread = first["attune"]["thread_id"]
    later = await _chat(api, key, "Any plans for the weekend?", thread)
    r = await api.client.post(
        "/v1/feedback",
        json={"turn_id": later["attune"]["turn_id"], "rating": "down", "edited_text": "Rest."},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/users/{uid}/samples",
        json={"samples": [{"text": f"A sample about {canary}."}]},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text
    await _chat(api, bkey, "Bob's own words.")
    await api.drain_jobs()
    settings = api.services.settings
    with api.services.store.session() as s:
        snapshot = snapshot_owner(
            s, owner_kind="user", owner_id=uid, root=str(settings.training.datasets_url)
        )
        s.add(
            AdapterRecord(
                owner_kind="user",
                owner_id=uid,
                version=1,
                kind="dpo",
                name=f"{uid}-dpo-v1",
                base_model="tiny",
                dataset_snapshot_id=snapshot.id,
            )
        )
        s.commit()

    r = await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(key))
    assert r.status_code == 200, r.text
    data = r.json()
    held = {
        kind: json.dumps(data[kind])
        for kind in (
            "turns",
            "memories",
            "stored_prompts",
            "preference_pairs",
            "samples",
            "dataset_snapshots",
            "thread_state",
        )
    }
    assert {kind for kind, text in held.items() if canary not in text} == set()
    (exported,) = data["dataset_snapshots"]
    assert exported["id"] == snapshot.id and exported["manifest"]["content_hash"]
    assert exported["manifest"]["counts"]["dpo"] == 1
    (adapter,) = data["adapters"]
    assert adapter["dataset_snapshot_id"] == snapshot.id and adapter["status"] == "candidate"
    assert thread in data["thread_state"]
    assert data["stored_prompts"][0]["source_turn_ids"]
    assert "Bob's own words." not in r.text  # only the user's own data
