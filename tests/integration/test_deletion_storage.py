"""Deletion below the row level: thread checkpoints, training work directories, Chroma's log.

* Deleting a turn leaves one checkpoint in its thread, holding the other messages and no
  per-turn channel; the thread goes on without the turn. Deleting the user leaves none.
  On the SQLite checkpointer and on the PostgreSQL one.
* A run directory whose snapshot is gone is removed; others stay.
* Chroma's embedded log loses the entries of deleted vectors and the file its free pages;
  what is left still loads in a fresh client.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from sqlmodel import Session

from adapters.records import DatasetSnapshot
from adapters.workdirs import WorkDirPurger
from memory.records import db
from memory.records.tables import Turn
from memory.scrub import chroma_embedded, scrub_sqlite
from tests.conftest import ADMIN_KEY, Api, open_api
from tests.fakes import ScriptedBackend
from tests.integration.canary_support import chat
from tests.integration.test_thread_state import durable_settings
from wiring.settings import Settings

SECRET = "zebrafinch"
__all__ = ["durable_settings"]  # a fixture (SQLite and PostgreSQL), used by name


async def _delete(api: Api, path: str, key: str) -> None:
    r = await api.client.delete(path, headers=api.auth(key))
    assert r.status_code == 202, r.text
    assert (await api.wait_job(r.json()["id"]))["status"] == "succeeded"


async def _checkpoints(api: Api, thread_id: str) -> list[Any]:
    saver = api.services.runner.graph.checkpointer
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    return [c async for c in saver.alist(config)]


async def test_checkpoints_keep_no_deleted_turn_nor_a_deleted_users_threads(
    durable_settings: Settings,
) -> None:
    durable_settings.worker.embedded = True
    durable_settings.worker.poll_interval_s = 0.05
    backend = ScriptedBackend(script="Noted.")
    async for api in open_api(durable_settings, backend):
        user, key = api.new_user()
        first = await chat(api, key, "My bird is a zebrafinch.")
        thread = first["attune"]["thread_id"]
        await chat(api, key, "What should I feed it?", thread)
        assert len(await _checkpoints(api, thread)) > 1
        with api.services.store.session() as session:
            reply = session.get(Turn, first["attune"]["turn_id"])
            assert reply is not None and reply.reply_to_id is not None
            question = reply.reply_to_id

        await _delete(api, f"/v1/users/{user}/turns/{question}", key)
        [only] = await _checkpoints(api, thread)
        values = only.checkpoint["channel_values"]
        assert set(values) == {"messages"}, "per-turn channels are recomputed by each run"
        assert question not in {m.id for m in values["messages"]}
        assert [m.text for m in values["messages"]] == [
            "Noted.",
            "What should I feed it?",
            "Noted.",
        ]
        assert SECRET not in repr(only)
        await chat(api, key, "And water?", thread)  # the thread goes on without it
        assert SECRET not in repr([m.text for m in backend.calls[-1]])

        await _delete(api, f"/v1/users/{user}", ADMIN_KEY)
        assert await _checkpoints(api, thread) == []


def test_only_run_directories_whose_snapshot_is_gone_are_removed(settings: Settings) -> None:
    engine = db.open_engine(settings.db)
    root = settings.data_dir / "training"
    with Session(engine) as session:
        snap = DatasetSnapshot(
            id="ds_kept", owner_kind="user", owner_id="usr_x", version=1, content_hash="h", url="u"
        )
        session.add(snap)
        session.commit()
    for name, state in (
        ("orphan", {"snapshot_id": "ds_gone"}),
        ("alive", {"snapshot_id": "ds_kept"}),
        ("fresh", None),  # nothing reserved yet: nothing derived from anyone
    ):
        (root / name / "checkpoints").mkdir(parents=True)
        if state is not None:
            (root / name / "state.json").write_text(json.dumps(state), encoding="utf-8")
    WorkDirPurger(engine, root).purge("usr_x", ["turn_any"])
    assert sorted(p.name for p in root.iterdir()) == ["alive", "fresh"]
    engine.dispose()


def test_chroma_keeps_no_log_entry_or_free_page_of_a_deleted_vector(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # Fresh for this test: Chroma's HNSW files are written from buffers hnswlib does not
    # clear, so a string an earlier test left in this process's heap can show up there.
    secret = f"{SECRET}{uuid.uuid4().hex}"

    path = tmp_path / "vectors"
    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    col = client.get_or_create_collection("attune-u-one", embedding_function=None)
    gone = client.get_or_create_collection("attune-u-two", embedding_function=None)
    vectors: Any = [[0.1] * 8, [0.2] * 8]
    col.upsert(
        ids=["doomed", "kept"], documents=[f"a {secret} sings", "a kept entry"], embeddings=vectors
    )
    gone.upsert(ids=["x"], documents=[f"{secret} again"], embeddings=vectors[:1])
    rekeyed: Any = [[0.4] * 8]
    col.upsert(ids=["kept"], embeddings=rekeyed, documents=["a kept entry"])  # re-keyed
    col.delete(ids=["doomed"])
    client.delete_collection("attune-u-two")
    file = chroma_embedded(path)
    assert secret.encode() in file.path.read_bytes()

    scrub_sqlite(file)
    assert [p for p in path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []
    assert col.get(include=["documents"])["documents"] == ["a kept entry"]
    with sqlite3.connect(file.path) as conn:
        log = conn.execute("SELECT id, operation FROM embeddings_queue ORDER BY seq_id").fetchall()
    assert log == [("kept", 2), ("doomed", 3)], "only the latest write of each id is logged"
    fresh = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    assert fresh.get_collection("attune-u-one").get()["ids"] == ["kept"]


def test_a_database_error_quotes_no_text(settings: Settings) -> None:
    """A failed write's message (logged, kept on a failed job) leaves its parameters out."""
    from sqlalchemy.exc import IntegrityError

    from memory.records.tables import Memory

    engine = db.open_engine(settings.db)
    with Session(engine) as session, pytest.raises(IntegrityError) as failed:
        session.add(Memory(user_id="usr_gone", kind="fact", text=f"a {SECRET}", content_hash="h"))
        session.commit()
    assert SECRET not in str(failed.value)
    engine.dispose()
