"""Feedback, regeneration and preference pairs over HTTP, with the embedded worker running
(scripted chat model; the queue is the real SQLite broker)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from memory.pairs import PairDraft, Rated, plan_pairs
from memory.records.tables import utcnow
from tests.conftest import ADMIN_KEY, Api

CHAT = "/v1/chat/completions"


async def _chat(api: Api, key: str, text: str, thread_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if thread_id:
        body["thread_id"] = thread_id
    r = await api.client.post(CHAT, json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _regenerate(api: Api, key: str, turn_id: str) -> dict[str, Any]:
    r = await api.client.post(
        CHAT,
        json={
            "messages": [{"role": "user", "content": "(ignored)"}],
            "attune": {"regenerate": turn_id},
        },
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _rate(api: Api, key: str, turn_id: str, rating: str, **extra: str) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/feedback", json={"turn_id": turn_id, "rating": rating, **extra}, headers=api.auth(key)
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_scripted_session_with_feedback_makes_the_expected_pairs(
    worker_api: Api,
) -> None:
    api = worker_api
    uid, key = api.new_user()
    thread = None
    replies: list[str] = []
    for i in range(20):
        out = await _chat(api, key, f"Question number {i}: tell me about topic {i}.", thread)
        thread = out["attune"]["thread_id"]
        replies.append(out["attune"]["turn_id"])
    for t in replies[0:5]:  # plain up-votes make no pairs
        await _rate(api, key, t, "up")
    for t in replies[5:8]:  # down, regenerate, up the regeneration: 3 regeneration pairs
        await _rate(api, key, t, "down")
        regen = await _regenerate(api, key, t)
        assert regen["attune"]["turn_id"] != t and regen["attune"]["thread_id"] == thread
        await _rate(api, key, regen["attune"]["turn_id"], "up")
    for t in replies[8:11]:  # edits: 3 edit pairs
        await _rate(api, key, t, "down", edited_text=f"A better answer for {t}.")
    # Two regenerations, the first down, the second up: 2 pairs for the one prompt.
    await _rate(api, key, replies[11], "down")
    first = (await _regenerate(api, key, replies[11]))["attune"]["turn_id"]
    await _rate(api, key, first, "down")
    second = (await _regenerate(api, key, replies[11]))["attune"]["turn_id"]
    await _rate(api, key, second, "up", comment="much better")
    # The original up, its regeneration down: 1 up_vs_down pair.
    await _rate(api, key, replies[12], "up")
    worse = (await _regenerate(api, key, replies[12]))["attune"]["turn_id"]
    await _rate(api, key, worse, "down")
    await api.drain_jobs()

    r = await api.client.get(f"/v1/users/{uid}/preference-pairs", headers=api.auth(key))
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 9
    assert Counter(p["rule"] for p in page["data"]) == {
        "regeneration": 5,
        "edit": 3,
        "up_vs_down": 1,
    }
    edit = next(p for p in page["data"] if p["rule"] == "edit")
    assert edit["chosen"].startswith("A better answer") and edit["rejected"].startswith("echo:")
    # The prompt is what the model was sent: Attune's system prompt, then the history.
    assert edit["prompt"][0]["role"] == "system"
    assert edit["prompt"][-1]["role"] == "user"
    assert all(p["prompt_turn_id"] in p["sources"]["turn_ids"] for p in page["data"])

    # Rebuilding (another rating of the same reply) adds nothing twice.
    await _rate(api, key, second, "up")
    await api.drain_jobs()
    r = await api.client.get(f"/v1/users/{uid}/preference-pairs", headers=api.auth(key))
    assert r.json()["total"] == 9

    # Deleting a regenerated reply removes the pairs it was in.
    r = await api.client.delete(f"/v1/users/{uid}/turns/{second}", headers=api.auth(key))
    assert r.status_code == 202
    job = await api.wait_job(r.json()["id"])
    assert job["status"] == "succeeded" and job["result"]["preference_pairs"] == 2
    r = await api.client.get(f"/v1/users/{uid}/preference-pairs", headers=api.auth(key))
    assert r.json()["total"] == 7


async def test_feedback_and_regeneration_reach_only_your_own_replies(api: Api) -> None:
    alice, akey = api.new_user("alice")
    _, bkey = api.new_user("bob")
    out = await _chat(api, akey, "Hello there")
    reply, asked = out["attune"]["turn_id"], None
    with api.services.store.session() as s:
        from memory.records.tables import Turn

        asked = s.get(Turn, reply).reply_to_id
    for key, turn in ((bkey, reply), (akey, asked), (akey, "turn_nope")):
        r = await api.client.post(
            "/v1/feedback", json={"turn_id": turn, "rating": "up"}, headers=api.auth(key)
        )
        assert r.status_code == 404, r.text
        r = await api.client.post(
            CHAT,
            json={"messages": [{"role": "user", "content": "x"}], "attune": {"regenerate": turn}},
            headers=api.auth(key),
        )
        assert r.status_code == 404, r.text
    r = await api.client.post(
        "/v1/feedback", json={"turn_id": reply, "rating": "meh"}, headers=api.auth(akey)
    )
    assert r.status_code == 422
    r = await api.client.post(
        "/v1/feedback", json={"turn_id": reply, "rating": "up"}, headers=api.auth(ADMIN_KEY)
    )
    assert r.status_code == 403  # the admin key belongs to no user
    r = await api.client.get(f"/v1/users/{alice}/preference-pairs", headers=api.auth(bkey))
    assert r.status_code == 404
    # Without a worker the job waits, queued, and its owner can see it.
    fb = await _rate(api, akey, reply, "down", comment="too short")
    assert fb["job"]["status"] == "queued" and fb["job"]["kind"] == "pairs"
    r = await api.client.get(f"/v1/jobs/{fb['job']['id']}", headers=api.auth(akey))
    assert r.status_code == 200 and r.json()["user_id"] == alice
    r = await api.client.get(f"/v1/jobs/{fb['job']['id']}", headers=api.auth(bkey))
    assert r.status_code == 404


def _rated(
    turn_id: str, content: str, rating: str | None, at: int, edit: str | None = None
) -> Rated:
    return Rated(
        turn_id=turn_id,
        content=content,
        created_at=utcnow().replace(microsecond=at),
        rating=rating,
        feedback_id=f"fb_{turn_id}" if rating else None,
        edited_text=edit,
    )


def test_pair_rules() -> None:
    def rules(drafts: list[PairDraft]) -> list[tuple[str, str, str]]:
        return sorted((d.rule, d.chosen, d.rejected) for d in drafts)

    # An edit identical to the reply teaches nothing.
    assert plan_pairs([_rated("a", "same", "down", 1, edit=" same ")]) == []
    assert rules(plan_pairs([_rated("a", "old", "down", 1, edit="new")])) == [
        ("edit", "new", "old")
    ]
    # Down then up (a regeneration) vs up then down.
    assert rules(plan_pairs([_rated("a", "A", "down", 1), _rated("b", "B", "up", 2)])) == [
        ("regeneration", "B", "A")
    ]
    assert rules(plan_pairs([_rated("a", "A", "up", 1), _rated("b", "B", "down", 2)])) == [
        ("up_vs_down", "A", "B")
    ]
    # Unrated replies and same-rating replies make no pairs; ids are stable.
    three = [_rated("a", "A", "up", 1), _rated("b", "B", "up", 2), _rated("c", "C", None, 3)]
    assert plan_pairs(three) == []
    pair = plan_pairs([_rated("a", "A", "down", 1), _rated("b", "B", "up", 2)])[0]
    assert pair.id == plan_pairs([_rated("a", "A", "down", 5), _rated("b", "B", "up", 6)])[0].id
