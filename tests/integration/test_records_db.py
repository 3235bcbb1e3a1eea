"""The record store on real SQLite and PostgreSQL: migrations, keys, turns, deletion."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from memory.persona.instructions import ProfileUpdate
from memory.persona.profile import save_updates
from memory.records import db, repo
from memory.records.store import RecordStore
from memory.records.tables import ApiKey, ProfileChange, Thread, Turn
from memory.retrieval.lexical import include_name


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def test_migrations_match_the_models(engine: Engine) -> None:
    assert db.current_revision(engine) is not None
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": include_name}),
            SQLModel.metadata,
        )
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    before = db.current_revision(engine)
    db.upgrade(engine)
    assert db.current_revision(engine) == before


def test_keys_are_stored_hashed_and_resolve(engine: Engine) -> None:
    store = RecordStore(engine)
    with store.session() as s:
        user, key = repo.create_user(s, name="ada")
        s.commit()
        stored = s.exec(select(ApiKey)).all()
        assert all(key not in (k.key_hash, k.prefix) for k in stored)
        assert repo.principal_for_key(s, key, admin_key=None) == repo.Principal(user.id, False)
        assert repo.principal_for_key(s, key + "x", admin_key=None) is None
        admin = repo.ensure_admin_key(s)
        assert admin is not None and repo.ensure_admin_key(s) is None
        assert repo.principal_for_key(s, admin, admin_key=None) == repo.Principal(None, True)
        # A configured admin key replaces the stored one.
        assert repo.principal_for_key(s, admin, admin_key="other") is None


def _exchange(user_id: str, thread_id: str, text: str, n: int) -> tuple[Turn, Turn]:
    u = Turn(id=f"turn_u{n}", user_id=user_id, thread_id=thread_id, role="user", content=text)
    a = Turn(
        id=f"turn_a{n}",
        user_id=user_id,
        thread_id=thread_id,
        role="assistant",
        content="ok",
        reply_to_id=u.id,
        model_target="base",
        prompt_version="v1",
        prompt_tokens=10,
        completion_tokens=2,
        latency_ms=1.5,
        ttft_ms=0.5,
        conversation_hash="h" * 64,
    )
    return u, a


async def test_exchange_is_recorded_once_and_deleted_with_its_user(engine: Engine) -> None:
    store = RecordStore(engine)
    with store.session() as s:
        alice, _ = repo.create_user(s, name="alice")
        bob, _ = repo.create_user(s, name="bob")
        s.commit()
    u, a = _exchange(alice.id, "thr_a", "I love sailing", 1)
    await store.record_exchange(thread_id="thr_a", user_id=alice.id, user_turn=u, assistant_turn=a)
    u2, a2 = _exchange(alice.id, "thr_a", "I love sailing", 1)
    await store.record_exchange(
        thread_id="thr_a", user_id=alice.id, user_turn=u2, assistant_turn=a2
    )
    ub, ab = _exchange(bob.id, "thr_b", "sailing is boring", 2)
    await store.record_exchange(thread_id="thr_b", user_id=bob.id, user_turn=ub, assistant_turn=ab)
    with store.session() as s:
        assert len(repo.thread_turns(s, user_id=alice.id, thread_id="thr_a")) == 2
        assert repo.get_thread(s, user_id=bob.id, thread_id="thr_a") is None
        assert (
            repo.find_thread_by_conversation(s, user_id=alice.id, conversation_hash="h" * 64)
            == "thr_a"
        )
    with store.session() as s:
        save_updates(
            s,
            user_id=alice.id,
            updates=[ProfileUpdate("preferred_name", "set", "Cap", "test")],
            source_turn_id="turn_u1",
        )
        assert repo.delete_user(s, user_id=alice.id) == ["thr_a"]
        s.commit()
    with store.session() as s:
        assert s.exec(select(Turn).where(Turn.user_id == alice.id)).all() == []
        assert s.exec(select(Thread).where(Thread.user_id == alice.id)).all() == []
        assert s.exec(select(ProfileChange)).all() == []
        assert len(s.exec(select(Turn).where(Turn.user_id == bob.id)).all()) == 2
