"""The canary deletion test's flow and its scans of every store.

A canary is a unique string. :func:`seed` puts one in a user turn and (optionally) in a
writing sample, and another (or the same) in an edit given as feedback on its reply, and
lets them flow through distillation, a preference pair, a dataset snapshot, a training run
(finished, and one interrupted mid-run that leaves its work directory), a session summary
and an export.
The scans then look for the canary's bytes in every file under a directory, every
PostgreSQL table, every Chroma collection and every Redis key.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.records.tables import Memory, Turn
from tests.conftest import Api

FOLLOW_UPS = 4
"""Turns after the canary's, rated up: with the canary's reply, the SFT minimum."""


@dataclass(frozen=True)
class Seeded:
    """Where a canary was put."""

    user_id: str
    key: str
    question_id: str
    """The user turn holding the canary."""
    reply_id: str
    """Its reply, whose feedback holds the edit."""
    thread_id: str


async def chat(api: Api, key: str, text: str, thread_id: str | None = None) -> dict[str, Any]:
    """One chat turn (in ``thread_id`` when given); the response body."""
    body: dict[str, Any] = {
        "model": "attune",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": text}],
    }
    if thread_id is not None:
        body["thread_id"] = thread_id
    # With a key: the stored response (the echoed canary) must go with the turn too.
    headers = {**api.auth(key), "Idempotency-Key": uuid.uuid4().hex}
    r = await api.client.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _feedback(api: Api, key: str, turn_id: str, **extra: Any) -> None:
    r = await api.client.post(
        "/v1/feedback", json={"turn_id": turn_id, **extra}, headers=api.auth(key)
    )
    assert r.status_code in (200, 201, 202), r.text


async def seed(api: Api, name: str, canary: str, *, edit: str, sample: bool) -> Seeded:
    """Put ``canary`` into a new user's data and let it reach every derived store.

    ``canary`` goes into a user turn (and a writing sample when ``sample``), ``edit`` into
    the edit given as feedback on that turn's reply.
    """
    user_id, key = api.new_user(name)
    first = await chat(api, key, f"I have a dog named {canary}. He loves the park.", None)
    thread_id, reply_id = first["attune"]["thread_id"], first["attune"]["turn_id"]
    await _feedback(api, key, reply_id, rating="down", edited_text=f"What a lovely name, {edit}!")
    for i in range(FOLLOW_UPS):  # the canary turn is history in every one of these
        reply = await chat(api, key, f"Tell me about walk number {i}.", thread_id)
        await _feedback(api, key, reply["attune"]["turn_id"], rating="up")
    if sample:
        r = await api.client.post(
            f"/v1/users/{user_id}/samples",
            json={"samples": [{"text": f"Dear diary, {canary} chased a ball today."}]},
            headers=api.auth(key),
        )
        assert r.status_code == 201, r.text
    await api.drain_jobs(within=120)  # distillation, pairs, style
    with Session(api.services.engine) as session:
        turn = session.get(Turn, reply_id)
        assert turn is not None and turn.reply_to_id is not None
        question_id = turn.reply_to_id
    summaries = api.services.memory.summarize_ended_sessions(user_id, idle_after=timedelta(0))
    assert any(canary in s.text for s in summaries), "the session summary quotes the canary"
    return Seeded(user_id, key, question_id, reply_id, thread_id)


async def train(api: Api, seeded: Seeded) -> dict[str, Any]:
    """A finished SFT run on the user's data (snapshot, weights)."""
    r = await api.client.post(
        f"/v1/users/{seeded.user_id}/train",
        json={"kind": "sft", "max_steps": 2},
        headers=api.auth(seeded.key),
    )
    assert r.status_code == 202, r.text
    done = await api.wait_job(r.json()["id"], within=240)
    assert done["status"] == "succeeded", done
    result: dict[str, Any] = done["result"]
    return result


class Interrupted(RuntimeError):
    """Stands for a worker killed mid-run."""


def interrupted_run(api: Api, seeded: Seeded, run_id: str) -> Path:
    """A training run killed after its first step: its work directory stays behind."""
    from adapters.jobs import TrainingPaths, run_training
    from adapters.model_store import resolve_model_dir

    settings = api.services.settings
    assert settings.training.work_dir is not None and settings.model.adapters_dir is not None
    paths = TrainingPaths(
        base_model_dir=resolve_model_dir(settings.model),
        adapters_dir=settings.model.adapters_dir,
        work_dir=settings.training.work_dir,
    )
    seen: list[float] = []

    def progress(value: float) -> None:
        seen.append(value)
        if len(seen) > 1:  # the snapshot is taken; training has begun
            raise Interrupted

    with contextlib.suppress(Interrupted):
        run_training(
            api.services.engine,
            settings.training,
            paths,
            owner_kind="user",
            owner_id=seeded.user_id,
            kind="sft",
            run_id=run_id,
            overrides={"max_steps": 2},
            progress=progress,
            publisher=None,  # never reached: the run is interrupted before its gate
        )
    run_dir = paths.work_dir / run_id
    assert (run_dir / "state.json").is_file(), "the interrupted run left its work directory"
    return run_dir


async def delete(api: Api, path: str, key: str) -> dict[str, Any]:
    """DELETE ``path`` and wait for its deletion job (and the retrains it queues)."""
    r = await api.client.delete(path, headers=api.auth(key))
    assert r.status_code == 202, r.text
    done = await api.wait_job(r.json()["id"], within=120)
    assert done["status"] == "succeeded", done
    await api.drain_jobs(within=240)
    result: dict[str, Any] = done["result"]
    return result


# ---- scans -----------------------------------------------------------------------------


def files_with(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` (recursively) whose raw bytes or path contain ``needle``."""
    data = needle.encode()
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if needle in str(p.relative_to(root)) or (p.is_file() and data in p.read_bytes())
    )


def fts_terms_with(db_file: Path, table: str, needle: str) -> list[str]:
    """Terms of an FTS5 index holding ``needle``; its pages prefix-compress terms, so a
    byte scan alone could miss one."""
    conn = sqlite3.connect(str(db_file))
    try:
        conn.execute(f"CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, {table}, row)")
        rows = conn.execute("SELECT term FROM temp.vocab WHERE instr(term, ?) > 0", (needle,))
        return [r[0] for r in rows]
    finally:
        conn.close()


def memory_ids_with(engine: Engine, needle: str) -> set[str]:
    """The memories whose text holds ``needle`` (their vectors are derived from it)."""
    with Session(engine) as session:
        return set(session.exec(select(Memory.id).where(col(Memory.text).contains(needle))))


def chroma_entries(db_file: Path, ids: set[str]) -> list[str]:
    """What embedded Chroma still holds of entries ``ids``: records and logged writes.

    Chroma keeps no text of ours (only vectors and ids), so its files are checked by the
    ids of the memories that held the canary; a logged delete is no copy.
    """
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    conn = sqlite3.connect(str(db_file))
    try:
        stored = conn.execute(
            f"SELECT embedding_id FROM embeddings WHERE embedding_id IN ({marks})", sorted(ids)
        ).fetchall()
        logged = conn.execute(
            f"SELECT id FROM embeddings_queue WHERE operation != 3 AND id IN ({marks})",
            sorted(ids),
        ).fetchall()
    finally:
        conn.close()
    return [f"embeddings:{r[0]}" for r in stored] + [f"embeddings_queue:{r[0]}" for r in logged]


def postgres_rows_with(url: str, needle: str) -> list[str]:
    """``table.column`` of every PostgreSQL value (text, JSON or bytes) holding ``needle``."""
    found: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        ).fetchall()
        for table, column, data_type in columns:
            if data_type == "bytea":
                where = f'position(%s::bytea IN "{column}") > 0'
                arg: object = needle.encode()
            else:
                where = f'strpos("{column}"::text, %s) > 0'
                arg = needle
            row = conn.execute(f'SELECT 1 FROM "{table}" WHERE {where} LIMIT 1', (arg,)).fetchone()
            if row is not None:
                found.append(f"{table}.{column}")
    return found


def chroma_items_with(url: str, needle: str) -> list[str]:
    """Collections of a Chroma server whose name, metadata, documents or entries' metadata
    hold ``needle``."""
    from memory.retrieval.vectors import VectorSettings, make_client

    client = make_client(VectorSettings(url=url))
    found: list[str] = []
    for collection in client.list_collections():
        got = collection.get(include=["documents", "metadatas"])
        text = repr((collection.name, collection.metadata, got["documents"], got["metadatas"]))
        if needle in text:
            found.append(collection.name)
    return found


def chroma_server_entries(url: str, ids: set[str]) -> list[str]:
    """Entries ``ids`` still in any collection of a Chroma server (by id: no text is kept)."""
    from memory.retrieval.vectors import VectorSettings, make_client

    if not ids:
        return []
    client = make_client(VectorSettings(url=url))
    return [
        f"{collection.name}:{entry}"
        for collection in client.list_collections()
        for entry in collection.get(ids=sorted(ids), include=[])["ids"]
    ]


def redis_keys_with(url: str, needle: str) -> list[str]:
    """Keys of the Redis database at ``url`` whose name or value holds ``needle``."""
    import redis

    client = redis.Redis.from_url(url)
    data = needle.encode()
    found: list[str] = []
    for key in client.scan_iter(count=500):
        kind = _text(client.type(key))
        if kind == "string":
            values: list[Any] = [client.get(key)]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "hash":
            values = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = list(client.zrange(key, 0, -1))
        else:
            values = []
        if data in _bytes(key) or any(isinstance(v, bytes) and data in v for v in values):
            found.append(_text(key))
    return found


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
