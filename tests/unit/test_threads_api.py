"""Thread routes, "why this answer", ``/v1/me`` and the admin lists, over HTTP.

Each route: 4xx for bad input with a message naming the problem, 404 for another user's
thread or turn (never its data), and a deleted thread leaves no copy of its text in any
table.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from tests.conftest import ADMIN_KEY, Api
from tests.fakes import ScriptedBackend

CHAT = "/v1/chat/completions"


async def _chat(api: Api, key: str, text: str, thread_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "attune", "messages": [{"role": "user", "content": text}]}
    if thread_id is not None:
        body["thread_id"] = thread_id
    r = await api.client.post(CHAT, json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()["attune"]
    return info


async def test_threads_list_newest_first_with_turns_and_rename(api: Api) -> None:
    user, key = api.new_user()
    first = await _chat(api, key, "Tell me about otters.")
    await _chat(api, key, "And their diet?", thread_id=first["thread_id"])
    second = await _chat(api, key, "Plan a trip to Oslo.")
    r = await api.client.get(f"/v1/users/{user}/threads", headers=api.auth(key))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 2
    assert [t["id"] for t in page["data"]] == [second["thread_id"], first["thread_id"]]
    assert page["data"][1]["title"] == "Tell me about otters." and page["data"][1]["turns"] == 4

    r = await api.client.get(
        f"/v1/users/{user}/threads/{first['thread_id']}", headers=api.auth(key)
    )
    assert r.status_code == 200, r.text
    turns = r.json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1]["reply_to_id"] == turns[0]["id"] and turns[1]["target"] == "base"
    assert turns[1]["prompt_version"] and turns[0]["content"] == "Tell me about otters."

    r = await api.client.patch(
        f"/v1/users/{user}/threads/{first['thread_id']}",
        json={"title": "  Otters  "},
        headers=api.auth(key),
    )
    assert r.status_code == 200 and r.json()["title"] == "Otters", r.text
    r = await api.client.get(f"/v1/users/{user}/threads?limit=1&offset=1", headers=api.auth(key))
    assert [t["title"] for t in r.json()["data"]] == ["Otters"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("get", "/threads?limit=0", None, 422, "limit"),
        ("get", "/threads?limit=201", None, 422, "limit"),
        ("get", "/threads?offset=-1", None, 422, "offset"),
        ("get", "/threads?offset=99999999999999999999", None, 422, "offset"),
        ("get", "/threads/not%20an%20id", None, 404, "no thread"),
        ("get", "/threads/thr_missing", None, 404, "no thread"),
        ("patch", "/threads/thr_missing", {"title": "x"}, 404, "no thread"),
        ("patch", "/threads/THREAD", {"title": ""}, 422, "title"),
        ("patch", "/threads/THREAD", {"title": "x" * 201}, 422, "title"),
        ("patch", "/threads/THREAD", {"title": "a\u0000b"}, 422, "NUL"),
        ("patch", "/threads/THREAD", {"title": "ok", "extra": 1}, 422, "extra"),
        ("patch", "/threads/THREAD", {"title": 5}, 422, "title"),
        ("delete", "/threads/thr_missing", None, 404, "no thread"),
        ("get", "/turns/turn_missing", None, 404, "no turn"),
        ("get", "/turns/turn_missing/why", None, 404, "no assistant turn"),
        ("get", "/turns/bad%20id/why", None, 404, "no assistant turn"),
        ("get", "/turns/USER_TURN/why", None, 404, "no assistant turn"),
    ],
)
async def test_bad_requests_answer_4xx_naming_the_problem(
    api: Api, method: str, path: str, body: Any, status: int, says: str
) -> None:
    user, key = api.new_user()
    info = await _chat(api, key, "Hello there.")
    with api.services.store.session() as s:
        from memory.records.tables import Turn

        reply = s.get(Turn, info["turn_id"])
        assert reply is not None
        user_turn = reply.reply_to_id
    path = path.replace("THREAD", info["thread_id"]).replace("USER_TURN", str(user_turn))
    kwargs: dict[str, Any] = {"headers": api.auth(key)}
    if body is not None:
        kwargs["json"] = body
    r = await getattr(api.client, method)(f"/v1/users/{user}{path}", **kwargs)
    assert r.status_code == status, r.text
    assert says.lower() in r.json()["error"]["message"].lower() + str(r.json()["error"]["param"])


async def test_another_users_thread_and_turn_answer_404_and_show_nothing(api: Api) -> None:
    alice, alice_key = api.new_user("alice")
    bob, bob_key = api.new_user("bob")
    secret = "alice-secret-kumquat"
    info = await _chat(api, alice_key, f"My code word is {secret}.")
    thread, turn = info["thread_id"], info["turn_id"]
    own = f"/v1/users/{bob}"
    for method, path, body in [
        ("get", f"{own}/threads/{thread}", None),
        ("patch", f"{own}/threads/{thread}", {"title": "mine now"}),
        ("delete", f"{own}/threads/{thread}", None),
        ("get", f"{own}/turns/{turn}", None),
        ("get", f"{own}/turns/{turn}/why", None),
    ]:
        kwargs: dict[str, Any] = {"headers": api.auth(bob_key)}
        if body is not None:
            kwargs["json"] = body
        r = await getattr(api.client, method)(path, **kwargs)
        assert r.status_code == 404, (method, path, r.text)
        assert secret not in r.text
    r = await api.client.get(f"{own}/threads", headers=api.auth(bob_key))
    assert r.status_code == 200 and r.json()["data"] == []
    # Bob's key on Alice's paths: 404, as for a user that does not exist.
    for path in ("threads", f"threads/{thread}", f"turns/{turn}/why", f"turns/{turn}"):
        r = await api.client.get(f"/v1/users/{alice}/{path}", headers=api.auth(bob_key))
        assert r.status_code == 404, r.text
        assert secret not in r.text
    r = await api.client.get(f"/v1/users/{alice}/threads/{thread}", headers=api.auth(alice_key))
    assert r.status_code == 200 and secret in r.text
    # The admin sees every user's threads.
    r = await api.client.get(f"/v1/users/{alice}/threads", headers=api.auth(ADMIN_KEY))
    assert [t["id"] for t in r.json()["data"]] == [thread]
    r = await api.client.get(f"/v1/users/{alice}/threads")
    assert r.status_code == 401


async def test_why_shows_the_prompt_sent_the_memories_quoted_and_their_sources(
    api: Api, backend: ScriptedBackend
) -> None:
    user, key = api.new_user()
    r = await api.client.post(
        f"/v1/users/{user}/memories",
        json={"kind": "fact", "text": "The user's cat is called Miso."},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text
    memory_id = r.json()["id"]
    await _chat(api, key, "Please call me Captain.")
    info = await _chat(api, key, "What is my cat called?")
    r = await api.client.get(f"/v1/users/{user}/turns/{info['turn_id']}/why", headers=api.auth(key))
    assert r.status_code == 200, r.text
    why = r.json()
    assert why["thread_id"] == info["thread_id"] and why["target"] == info["target"] == "base"
    assert why["route_kind"] == "base" and why["adapter"] is None
    assert why["prompt_version"] == info["prompt_version"] and why["prompt_versions"]
    assert "Captain" in why["system_prompt"]
    assert why["messages"][0]["role"] == "system" and why["messages"][-1]["role"] == "user"
    quoted = {m["id"]: m for m in why["memories"]}
    assert quoted[memory_id]["sources"] == []  # written by hand
    # The episodic memory of the earlier turn, with its source turn and thread.
    sourced = [s for m in why["memories"] for s in m["sources"]]
    assert any(s["content"] == "Please call me Captain." for s in sourced), why["memories"]
    assert all(s["thread_id"] for s in sourced)
    assert why["experiments"] == []
    r = await api.client.get(f"/v1/users/{user}/turns/{info['turn_id']}", headers=api.auth(key))
    assert r.status_code == 200 and r.json()["thread_id"] == info["thread_id"], r.text


async def test_me_and_the_admin_lists(api: Api) -> None:
    user, key = api.new_user("carol")
    r = await api.client.get("/v1/me", headers=api.auth(key))
    assert r.json() == {"user_id": user, "name": "carol", "group_id": None, "is_admin": False}
    r = await api.client.get("/v1/me", headers=api.auth(ADMIN_KEY))
    assert r.json()["is_admin"] is True and r.json()["user_id"] is None
    for path in ("users", "groups", "jobs", "eval-runs"):
        r = await api.client.get(f"/v1/admin/{path}", headers=api.auth(key))
        assert r.status_code == 403, r.text
        r = await api.client.get(f"/v1/admin/{path}", headers=api.auth(ADMIN_KEY))
        assert r.status_code == 200, r.text
    r = await api.client.get("/v1/admin/users", headers=api.auth(ADMIN_KEY))
    assert [u["name"] for u in r.json()["data"]] == ["carol"]
    await _chat(api, key, "Hello.")
    r = await api.client.get("/v1/admin/jobs?kind=distill", headers=api.auth(ADMIN_KEY))
    assert r.json()["data"][0]["kind"] == "distill" and r.json()["counts"]
    for bad in ("status=done", "limit=0", "limit=501", "kind=DROP%20TABLE", "user_id=a%20b"):
        r = await api.client.get(f"/v1/admin/jobs?{bad}", headers=api.auth(ADMIN_KEY))
        assert r.status_code == 422, (bad, r.text)
    r = await api.client.get("/v1/admin/eval-runs/no-such-run/report", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 404 and "no eval run" in r.json()["error"]["message"]
    r = await api.client.get("/v1/admin/eval-runs/..%2Fx/report", headers=api.auth(ADMIN_KEY))
    assert r.status_code in (404, 422)


def _tables_holding(api: Api, text: str) -> list[str]:
    """Every table with a row whose values mention ``text``."""
    held = []
    with api.services.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            if any(text in json.dumps([str(v) for v in row]) for row in rows):
                held.append(table.name)
    return held


async def test_deleting_a_thread_leaves_no_copy_of_its_text(worker_api: Api) -> None:
    api = worker_api
    user, key = api.new_user()
    canary = "quokka-canary-7731"
    kept = "wombat-kept-5120"
    info = await _chat(api, key, f"Please call me {canary}. My locker code is {canary}.")
    await _chat(api, key, f"Remember {canary} again.", thread_id=info["thread_id"])
    other = await _chat(api, key, f"My favourite animal is the {kept}.")
    r = await api.client.post(
        "/v1/feedback", json={"turn_id": info["turn_id"], "rating": "up"}, headers=api.auth(key)
    )
    assert r.status_code == 201, r.text
    await api.drain_jobs()
    assert "turns" in _tables_holding(api, canary)

    r = await api.client.delete(
        f"/v1/users/{user}/threads/{info['thread_id']}", headers=api.auth(key)
    )
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["thread_id"] == info["thread_id"] and len(out["jobs"]) == 4
    # Gone from the listing at once, and its id answers 404.
    r = await api.client.get(f"/v1/users/{user}/threads", headers=api.auth(key))
    assert [t["id"] for t in r.json()["data"]] == [other["thread_id"]]
    r = await api.client.get(f"/v1/users/{user}/threads/{info['thread_id']}", headers=api.auth(key))
    assert r.status_code == 404
    for job in out["jobs"]:
        assert (await api.wait_job(job["id"], within=240))["status"] == "succeeded"
    await api.drain_jobs()
    assert _tables_holding(api, canary) == []
    assert "turns" in _tables_holding(api, kept)  # the other thread is untouched
    snapshot = await api.services.runner.graph.aget_state(
        {"configurable": {"thread_id": info["thread_id"]}}
    )
    assert not snapshot.values
    # The reaper removes the empty row once the jobs are done.
    from memory.records.tables import Thread

    for _ in range(100):
        with api.services.store.session() as s:
            if s.get(Thread, info["thread_id"]) is None:
                break
        import asyncio

        await asyncio.sleep(0.1)
    with api.services.store.session() as s:
        assert s.get(Thread, info["thread_id"]) is None
    r = await api.client.delete(
        f"/v1/users/{user}/threads/{info['thread_id']}", headers=api.auth(key)
    )
    assert r.status_code == 404
