"""The streamed user export: the same document, read a batch at a time, the same isolation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from api.export_stream import chunked, encode_parts
from graph.thread_export import export_threads
from memory.export import Rows, collect
from memory.records.tables import Thread, Turn, utcnow
from tests.conftest import ADMIN_KEY, Api
from tests.unit.test_feedback_pairs import _chat

KEYS = [
    "user",
    "threads",
    "turns",
    "feedback",
    "profile",
    "profile_history",
    "profile_versions",
    "instruction_blocks",
    "stored_prompts",
    "preference_pairs",
    "memories",
    "samples",
    "dataset_snapshots",
    "adapters",
    "thread_state",
]
"""The export's sections, in the order the document has always had them."""


def _seed_turns(api: Api, user_id: str, n: int) -> list[str]:
    """``n`` turns in one thread, seven at a time sharing a timestamp (ties to page across)."""
    start = utcnow()
    with Session(api.services.engine) as s:
        thread = Thread(user_id=user_id, title="long")
        s.add(thread)
        s.flush()
        turns = [
            Turn(
                user_id=user_id,
                thread_id=thread.id,
                role="user" if i % 2 == 0 else "assistant",
                content=f"turn {i}",
                created_at=start + timedelta(seconds=i // 7),
            )
            for i in range(n)
        ]
        s.add_all(turns)
        s.commit()
        return [t.id for t in sorted(turns, key=lambda t: (t.created_at, t.id))]


async def test_the_streamed_export_is_the_document_the_export_holds(api: Api) -> None:
    uid, key = api.new_user()
    first = await _chat(api, key, "Please call me Captain. I live in Porto.")
    await _chat(api, key, "What should I cook tonight?", first["attune"]["thread_id"])
    r = await api.client.post(
        f"/v1/users/{uid}/memories",
        json={"kind": "fact", "text": "Likes tea."},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text

    r = await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert "content-length" not in r.headers  # streamed, not rendered whole
    streamed = r.json()
    assert list(streamed) == KEYS
    # What the route returned before it streamed: the export's dict, plus thread state.
    whole = api.services.core.export.user(uid)
    whole["thread_state"] = await export_threads(
        api.services.runner.graph, [t["id"] for t in whole["threads"]]
    )
    assert streamed == whole
    assert len(streamed["turns"]) == 4 and streamed["memories"]
    assert first["attune"]["thread_id"] in streamed["thread_state"]


async def test_a_long_history_is_read_and_written_a_batch_at_a_time(api: Api) -> None:
    uid, key = api.new_user()
    expected = _seed_turns(api, uid, 3000)
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM turns" in statement:
            reads.append(statement)

    engine = api.services.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        parts = api.services.core.export.parts(uid, batch=250)
        turns = next(value for name, value in parts if name == "turns")
        assert isinstance(turns, Rows)
        assert reads == []  # nothing read until the section is written
        batches = [[row["id"] for row in batch] for batch in turns.batches]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [len(b) for b in batches] == [250] * 12
    assert [i for b in batches for i in b] == expected  # every turn once, in order, ties too
    assert len(reads) == 13 and all("LIMIT" in s for s in reads)  # 12 full pages, 1 empty

    r = await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(key))
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["turns"]] == expected


def test_the_writer_emits_one_valid_object_in_bounded_chunks() -> None:
    def pages(n: int) -> Any:
        for start in range(0, n, 100):
            yield [{"id": f"thr_{i}", "text": "é" * 50} for i in range(start, min(n, start + 100))]
        yield []  # an empty batch writes nothing

    thread_ids: list[str] = []
    parts = [("user", {"id": "u"}), ("threads", Rows(pages(1000))), ("none", None)]
    chunks = list(chunked(encode_parts(parts, thread_ids), 4096))
    assert all(len(c) < 4096 + 100 * 120 for c in chunks) and len(chunks) > 10
    doc = json.loads(b"{" + b"".join(chunks) + b"}")
    assert list(doc) == ["user", "threads", "none"] and len(doc["threads"]) == 1000
    assert thread_ids == [f"thr_{i}" for i in range(1000)]
    assert collect([("threads", Rows(pages(250)))])["threads"][-1]["id"] == "thr_249"


async def test_only_the_user_and_the_admin_may_export(api: Api) -> None:
    uid, _ = api.new_user()
    _, other = api.new_user("bob")
    r = await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(other))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = await api.client.get(f"/v1/users/{uid}/export")
    assert r.status_code == 401
    r = await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["user"]["id"] == uid
    r = await api.client.get("/v1/users/usr_nobody/export", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 404
