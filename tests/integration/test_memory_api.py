"""Memory over HTTP with the real embedder, Chroma and full-text index (scripted chat model)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from memory.records.tables import Memory, MemorySource, Turn
from tests.conftest import Api

SESSIONS: dict[str, Any] = {
    "sessions": [
        {
            "id": "s1",
            "started_at": "2026-01-10T09:00:00Z",
            "turns": [
                {
                    "id": "t1",
                    "role": "user",
                    "speaker": "Ana",
                    "content": "I live in Lisbon and I adopted a cat named Biscuit.",
                },
                {"id": "t2", "role": "assistant", "content": "Biscuit is a lovely name!"},
            ],
        },
        {
            "id": "s2",
            "started_at": "2026-03-02T18:30:00Z",
            "turns": [
                {
                    "id": "t3",
                    "role": "user",
                    "content": "I moved to Porto last week for a new job.",
                },
                {"id": "t4", "role": "assistant", "content": "Congratulations on the move."},
            ],
        },
    ]
}


async def _import(api: Api, uid: str, key: str, body: dict[str, Any] = SESSIONS) -> dict[str, Any]:
    r = await api.client.post(f"/v1/users/{uid}/history", json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    body_out: dict[str, Any] = r.json()
    return body_out


async def test_import_is_searchable_at_once_and_idempotent(api: Api) -> None:
    uid, key = api.new_user()
    first = await _import(api, uid, key)
    assert (first["turns_imported"], first["threads_created"]) == (4, 2)
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search",
        params={"q": "what is my cat called", "k": 3},
        headers=api.auth(key),
    )
    top = r.json()["data"][0]
    assert "Biscuit" in top["text"]
    assert {"turn_id", "external_id"} <= top["sources"][0].keys()
    assert top["sources"][0]["external_id"] in {"t1", "t2"}
    again = await _import(api, uid, key)
    assert (again["turns_imported"], again["turns_skipped"], again["threads_created"]) == (0, 4, 0)
    assert again["thread_ids"] == first["thread_ids"]
    job = await api.client.get(f"/v1/jobs/{first['job_id']}", headers=api.auth(key))
    assert job.json()["kind"] == "distill"  # the import's background work, to follow
    assert again["job_id"] is None  # nothing new: nothing to distill


async def test_distilled_facts_supersede_with_history(worker_api: Api) -> None:
    api = worker_api
    uid, key = api.new_user()
    await _import(api, uid, key)
    await api.drain_jobs()
    r = await api.client.get(
        f"/v1/users/{uid}/memories", params={"kind": "fact"}, headers=api.auth(key)
    )
    facts = r.json()["data"]
    lisbon = [m for m in facts if "Lisbon" in m["text"]]
    porto = [m for m in facts if "Porto" in m["text"]]
    assert lisbon and porto
    assert lisbon[0]["invalid_at"] is not None and lisbon[0]["superseded_by"] == porto[0]["id"]
    assert porto[0]["invalid_at"] is None
    assert porto[0]["valid_from"].startswith("2026-02-2")  # "last week" before 2 March
    assert any("Biscuit" in m["text"] and m["invalid_at"] is None for m in facts)
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search",
        params={"q": "where do I live", "kind": "fact"},
        headers=api.auth(key),
    )
    assert [m["text"] for m in r.json()["data"] if "Lisbon" in m["text"]] == []


async def test_an_imported_conversation_teaches_about_its_named_second_speaker(
    worker_api: Api,
) -> None:
    api = worker_api
    uid, key = api.new_user()
    body = {
        "sessions": [
            {
                "id": "c1",
                "started_at": "2023-05-08T13:56:00Z",
                "turns": [
                    {"id": "D1:1", "role": "user", "speaker": "Caroline", "content": "Hi Mel!"},
                    {
                        "id": "D1:2",
                        "role": "assistant",
                        "speaker": "Melanie",
                        "content": "I have two kids and I paint landscapes every weekend.",
                    },
                    {"id": "D1:3", "role": "assistant", "content": "I have two cats."},
                ],
            }
        ]
    }
    await _import(api, uid, key, body)
    await api.drain_jobs()
    r = await api.client.get(
        f"/v1/users/{uid}/memories", params={"kind": "fact"}, headers=api.auth(key)
    )
    facts = r.json()["data"]
    assert facts and all("Melanie" in m["text"] for m in facts), facts
    assert {s["external_id"] for m in facts for s in m["sources"]} == {"D1:2"}
    assert all(m["created_at"].startswith("2023-05-08") for m in facts)


async def test_chat_turns_are_indexed_before_the_next_turn(api: Api, backend) -> None:
    uid, key = api.new_user()
    r = await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "My sister Marta plays the cello."}]},
        headers=api.auth(key),
    )
    turn_id = r.json()["attune"]["turn_id"]
    r = await api.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "What instrument does Marta play?"}]},
        headers=api.auth(key),
    )
    assert "cello" in backend.calls[-1][0].text  # recalled from the other thread
    assert r.json()["attune"]["memory_ids"]
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search", params={"q": "cello"}, headers=api.auth(key)
    )
    sources = {s["turn_id"] for m in r.json()["data"] for s in m["sources"]}
    with api.services.store.session() as s:
        user_turn_id = s.get(Turn, turn_id).reply_to_id
    # Both sides of the first exchange were indexed, each with its own turn as source.
    assert {turn_id, user_turn_id} <= sources


async def test_manual_memory_crud_and_export(api: Api) -> None:
    uid, key = api.new_user()
    h = api.auth(key)
    r = await api.client.post(
        f"/v1/users/{uid}/memories",
        json={"kind": "preference", "text": "Prefers metric units"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    r = await api.client.patch(
        f"/v1/users/{uid}/memories/{mid}", json={"text": "Prefers imperial units"}, headers=h
    )
    assert r.json()["text"] == "Prefers imperial units"
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search", params={"q": "imperial"}, headers=h
    )
    assert r.json()["data"][0]["id"] == mid
    export = (await api.client.get(f"/v1/users/{uid}/export", headers=h)).json()
    assert {
        "user",
        "threads",
        "turns",
        "memories",
        "profile",
        "profile_history",
        "feedback",
    } <= export.keys()
    assert any(m["id"] == mid for m in export["memories"])
    assert (
        await api.client.delete(f"/v1/users/{uid}/memories/{mid}", headers=h)
    ).status_code == 204
    assert (
        await api.client.delete(f"/v1/users/{uid}/memories/{mid}", headers=h)
    ).status_code == 404
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search", params={"q": "imperial"}, headers=h
    )
    assert r.json()["data"] == []
    assert (
        api.services.memory.vectors.count(uid) == 0 and api.services.memory.lexical.count(uid) == 0
    )


async def test_deleting_a_turn_removes_what_was_derived_from_it(worker_api: Api) -> None:
    api = worker_api
    uid, key = api.new_user()
    await _import(api, uid, key)
    await api.drain_jobs()
    with api.services.store.session() as s:
        t1 = s.exec(select(Turn).where(Turn.external_id == "t1")).one()
        derived = s.exec(select(MemorySource.memory_id).where(MemorySource.turn_id == t1.id)).all()
    assert len(derived) >= 2  # the episodic copy and at least one fact
    r = await api.client.delete(f"/v1/users/{uid}/turns/{t1.id}", headers=api.auth(key))
    assert r.status_code == 202
    assert (await api.wait_job(r.json()["id"]))["status"] == "succeeded"
    with api.services.store.session() as s:
        assert s.get(Turn, t1.id) is None
        assert all(s.get(Memory, m) is None for m in derived)
    r = await api.client.get(
        f"/v1/users/{uid}/memories/search", params={"q": "Biscuit cat"}, headers=api.auth(key)
    )
    assert all("Biscuit" not in m["text"] or m["speaker"] == "assistant" for m in r.json()["data"])


async def test_memory_routes_are_per_user_and_validate_with_422(api: Api) -> None:
    a, akey = api.new_user("a")
    b, bkey = api.new_user("b")
    await _import(api, b, bkey)
    for method, path in [
        ("GET", f"/v1/users/{b}/memories"),
        ("GET", f"/v1/users/{b}/memories/search?q=cat"),
        ("GET", f"/v1/users/{b}/export"),
        ("POST", f"/v1/users/{b}/history"),
    ]:
        r = await api.client.request(
            method, path, headers=api.auth(akey), json=SESSIONS if method == "POST" else None
        )
        assert r.status_code == 404, (path, r.text)
    r = await api.client.get(
        f"/v1/users/{a}/memories/search", params={"q": "Biscuit"}, headers=api.auth(akey)
    )
    assert r.json()["data"] == []
    bad = [
        {"sessions": []},
        {
            "sessions": [
                {
                    "id": "x",
                    "started_at": "2026-01-01T00:00:00Z",
                    "turns": [{"id": "1", "role": "robot", "content": "hi"}],
                }
            ]
        },
        {
            "sessions": [
                {
                    "id": "x",
                    "started_at": "2026-01-01T00:00:00Z",
                    "turns": [
                        {"id": "1", "role": "user", "content": "a"},
                        {"id": "1", "role": "user", "content": "b"},
                    ],
                }
            ]
        },
        {"sessions": [{"id": "x", "turns": [{"id": "1", "role": "user", "content": "a"}]}]},
    ]
    for body in bad:
        r = await api.client.post(f"/v1/users/{a}/history", json=body, headers=api.auth(akey))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"]
    with api.services.store.session() as s:
        assert s.exec(select(Turn).where(Turn.user_id == a)).all() == []
    bad_params: list[dict[str, str | int]] = [
        {"q": ""},
        {"q": "x", "k": 0},
        {"q": "x", "k": 101},
        {},
    ]
    for params in bad_params:
        r = await api.client.get(
            f"/v1/users/{a}/memories/search", params=params, headers=api.auth(akey)
        )
        assert r.status_code == 422, (params, r.text)
    r = await api.client.get(f"/v1/users/{a}/memories/mem_nope", headers=api.auth(akey))
    assert r.status_code == 404
