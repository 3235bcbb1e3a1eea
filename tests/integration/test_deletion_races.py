"""Deletion racing the writers that derive from the data, with the interleavings forced.

* Deferred dense indexing reads a user's memories, then (paused there) the user or one
  memory is deleted, then it upserts: the vectors must not come back (no collection for a
  deleted user, no vector for a deleted memory).
* A distill job reads a turn, then (paused in extraction) the turn is deleted, then it
  writes its memories: none may remain that names or quotes the deleted turn.

Real SQLite, embedded Chroma, FTS5 and MiniLM; the cascades are the composition root's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from sqlmodel import Session, col, select

from memory.records import repo
from memory.records.jobs import Job
from memory.records.tables import Memory, MemorySource, Turn
from memory.retrieval.protocols import IndexEntry
from memory.retrieval.vectors import collection_name
from memory.views import NewMemory
from tests.conftest import shared_embedder
from tests.fakes import ScriptedBackend
from wiring.services import Core, build_core
from wiring.settings import Settings
from workers import handlers
from workers.context import WorkerContext

SECRET = "My dog is called Snowball and I live in Reykjavik."


@pytest.fixture
def core(settings: Settings) -> Iterator[Core]:
    built = build_core(settings, backend=ScriptedBackend(), embedder=shared_embedder())
    try:
        yield built
    finally:
        built.close()


def _user_with_turn(core: Core, text: str = SECRET) -> tuple[str, Turn]:
    with Session(core.engine, expire_on_commit=False) as session:
        user, _ = repo.create_user(session, name="ana")
        thread_id = "thr_race"
        question = Turn(user_id=user.id, thread_id=thread_id, role="user", content=text)
        answer = Turn(
            user_id=user.id,
            thread_id=thread_id,
            role="assistant",
            content="Noted.",
            reply_to_id=question.id,
        )
        repo.record_exchange(
            session,
            thread_id=thread_id,
            user_id=user.id,
            user_turn=question,
            assistant_turn=answer,
        )
        session.commit()
        return user.id, question


def _pause_first_upsert(
    core: Core, monkeypatch: pytest.MonkeyPatch, during: Callable[[], object]
) -> threading.Event:
    """Make the vector index's next upsert run ``during()`` first (in the writer's thread,
    after the writer has read its rows); returns an event set once the upsert is done."""
    vectors = core.memory.vectors
    real = vectors.upsert
    done = threading.Event()

    def upsert(
        user_id: str, entries: Sequence[IndexEntry], embeddings: Sequence[Sequence[float]]
    ) -> None:
        monkeypatch.setattr(vectors, "upsert", real)
        during()
        real(user_id, entries, embeddings)
        done.set()

    monkeypatch.setattr(vectors, "upsert", upsert)
    return done


def _collections(core: Core) -> set[str]:
    client = core.memory.vectors._client  # type: ignore[attr-defined]
    return {c.name for c in client.list_collections()}


def test_deferred_indexing_does_not_recreate_a_deleted_users_vectors(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, _ = _user_with_turn(core)
    views = core.memory.add(uid, [NewMemory(kind="fact", text=SECRET)], dense=False)
    done = _pause_first_upsert(core, monkeypatch, lambda: core.deletion.user(user_id=uid))
    core.memory.index_dense(uid, [v.id for v in views])  # reads, deletion, then upserts
    assert done.is_set()
    with Session(core.engine) as session:
        assert session.exec(select(Memory).where(Memory.user_id == uid)).first() is None
    assert collection_name(uid) not in _collections(core)
    assert core.memory.vectors.count(uid) == 0


def test_deferred_indexing_does_not_bring_back_a_deleted_memory(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, _ = _user_with_turn(core)
    texts = [SECRET, "I also enjoy kayaking on weekends."]
    views = core.memory.add(uid, [NewMemory(kind="fact", text=t) for t in texts], dense=False)
    doomed, kept = views[0].id, views[1].id
    _pause_first_upsert(core, monkeypatch, lambda: core.memory.delete(uid, [doomed]))
    core.memory.index_dense(uid, [doomed, kept])
    assert core.memory.vectors.count(uid) == 1
    hits = core.memory.vectors.query(uid, core.memory.embedder.embed([SECRET])[0], k=5)
    assert [h.memory_id for h in hits] == [kept]


def test_a_distill_overlapping_its_turns_deletion_leaves_no_memory_of_it(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid, turn = _user_with_turn(core)
    extractor = core.memory.extractor
    real = extractor.extract

    def extract(text: str, **kwargs: Any) -> Any:
        # The job has read the turn; its deletion runs to the end before the job writes.
        core.deletion.turn(user_id=uid, turn_id=turn.id)
        return real(text, **kwargs)

    monkeypatch.setattr(extractor, "extract", extract)
    job = Job(kind="distill", key=f"distill:{turn.id}", queue="light")
    job.payload = {"turn_ids": [turn.id]}
    result = handlers.distill(WorkerContext(core=core), job)

    assert result["memories_written"] >= 1, result  # it did write, after the deletion
    assert result["deleted_meanwhile"] == 1, result
    with Session(core.engine) as session:
        assert session.get(Turn, turn.id) is None
        sourced = session.exec(
            select(MemorySource).where(col(MemorySource.turn_id) == turn.id)
        ).all()
        assert sourced == []
        texts = [m.text for m in session.exec(select(Memory).where(Memory.user_id == uid))]
    assert not any("Snowball" in t or "Reykjavik" in t for t in texts), texts
    assert core.memory.vectors.count(uid) == 0
    assert core.memory.lexical.count(uid) == 0
