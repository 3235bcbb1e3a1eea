"""Training records on real SQLite and PostgreSQL: samples, dataset snapshots from
feedback, and the adapter registry (promote, rollback, retire) pointing users at adapters
that a real local engine then serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters import registry
from adapters.backend import LocalBackend
from adapters.dataset_sources import (
    add_samples,
    delete_user_data,
    snapshot_owner,
    snapshots_using,
)
from adapters.datasets import read_snapshot
from adapters.deletion import AdapterPurger, DerivedFiles
from adapters.engine import LocalEngine
from adapters.hparams import HParams
from adapters.records import AdapterRecord
from adapters.sft import train_sft
from adapters.training import RunSpec
from graph.routing import choose_route
from memory.records.tables import Feedback, Thread, Turn, User, UserGroup
from tests.conftest import Api
from tests.tiny_lm import build_tiny_lm


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def _exchange(session: Session, user: User, thread: Thread, question: str, reply: str) -> Turn:
    asked = Turn(user_id=user.id, thread_id=thread.id, role="user", content=question)
    session.add(asked)
    session.flush()
    answer = Turn(
        user_id=user.id, thread_id=thread.id, role="assistant", content=reply, reply_to_id=asked.id
    )
    session.add(answer)
    session.flush()
    return answer


def _seed(session: Session) -> tuple[User, dict[str, Turn]]:
    group = UserGroup(name="pirates")
    session.add(group)
    session.flush()
    user = User(name="ann", group_id=group.id)
    session.add(user)
    session.flush()
    thread = Thread(user_id=user.id)
    session.add(thread)
    session.flush()
    turns = {
        "up": _exchange(session, user, thread, "Hi, I'm ann@example.com", "Ahoy, Ann!"),
        "edit": _exchange(session, user, thread, "Weather?", "It is sunny."),
        "down": _exchange(session, user, thread, "Joke?", "No."),
    }
    session.add(Feedback(user_id=user.id, turn_id=turns["up"].id, rating="up"))
    session.add(
        Feedback(
            user_id=user.id,
            turn_id=turns["edit"].id,
            rating="down",
            edited_text="Arr, sunny skies, call 415-555-0199!",
        )
    )
    session.add(Feedback(user_id=user.id, turn_id=turns["down"].id, rating="down"))
    session.flush()
    return user, turns


def test_snapshot_from_feedback_and_samples(engine: Engine, tmp_path: Path):
    root = str(tmp_path / "datasets")
    with Session(engine) as session:
        user, turns = _seed(session)
        added = add_samples(
            session, user_id=user.id, texts=["Me words, me way.", "Me words, me way."]
        )
        assert len(added) == 1
        assert add_samples(session, user_id=user.id, texts=["Me words, me way."]) == []
        snap = snapshot_owner(session, owner_kind="user", owner_id=user.id, root=root)
        session.commit()

        assert snap.version == 1 and snap.sft_count == 3 and snap.dpo_count == 1
        assert set(snap.source_turn_ids) == {turns["up"].id, turns["edit"].id}
        assert snap.source_sample_ids == [added[0].id]
        data = read_snapshot(snap.url)
        completions = sorted(e.completion for e in data.sft)
        assert completions == ["Ahoy, Ann!", "Arr, sunny skies, call [PHONE]!", "Me words, me way."]
        assert data.pairs[0].rejected == "It is sunny."
        assert "ann@example.com" not in (Path(snap.url) / "sft.jsonl").read_text()

        # Same data: the same snapshot; a group snapshot pools its members.
        again = snapshot_owner(session, owner_kind="user", owner_id=user.id, root=root)
        assert again.id == snap.id
        group_snap = snapshot_owner(
            session, owner_kind="group", owner_id=user.group_id or "", root=root
        )
        # The hash names the content alone; the owner is in the path and the record.
        assert group_snap.content_hash == snap.content_hash and group_snap.url != snap.url
        assert json.loads((Path(group_snap.url) / "manifest.json").read_text())["counts"] == {
            "sft": 3,
            "dpo": 1,
        }
        assert {s.id for s in snapshots_using(session, turn_ids=[turns["edit"].id])} == {
            snap.id,
            group_snap.id,
        }
        assert delete_user_data(session, user_id=user.id) == 1
        session.commit()


def _candidate(session: Session, user: User, adapters_dir: Path, tiny: Path, version: int):
    spec = RunSpec(
        kind="sft",
        base_model_dir=tiny,
        work_dir=adapters_dir.parent / "work" / f"v{version}",
        output_dir=adapters_dir / registry.adapter_name(user.id, "sft", version),
        hparams=HParams(max_steps=1, batch_size=2, seed=version),
        device="cpu",
    )
    from adapters.datasets import SFTExample

    examples = [SFTExample(({"role": "user", "content": "hi"},), "Arr!", "accepted", "t1")]
    train_sft(examples, spec)
    return registry.register_candidate(
        session,
        owner_kind="user",
        owner_id=user.id,
        kind="sft",
        version=version,
        base_model="tiny",
        dataset_snapshot_id=None,
    )


def test_promote_rollback_retire_point_the_user_and_the_engine(engine: Engine, tmp_path: Path):
    tiny = build_tiny_lm(tmp_path / "tiny")
    adapters_dir = tmp_path / "adapters"
    local = LocalEngine.load(tiny, adapters_dir=adapters_dir, device="cpu", max_concurrency=1)
    backend = LocalBackend(local)

    def loaded() -> set[str]:
        return local.adapters.loaded()  # what publication loaded, before any request

    with Session(engine) as session:
        user, _ = _seed(session)
        assert registry.next_version(session, owner_kind="user", owner_id=user.id) == 1
        first = _candidate(session, user, adapters_dir, tiny, 1)
        assert (
            registry.register_candidate(  # idempotent for a redelivered task
                session,
                owner_kind="user",
                owner_id=user.id,
                kind="sft",
                version=1,
                base_model="tiny",
                dataset_snapshot_id=None,
            ).id
            == first.id
        )
        registry.promote(session, adapter_id=first.id, adapters_dir=adapters_dir, publisher=backend)
        session.commit()
        assert loaded() == {first.name}
        assert session.get(User, user.id).adapter_name == first.name  # type: ignore[union-attr]
        route = choose_route(
            requested_model="attune",
            user_adapter=first.name,
            group_adapter=None,
            is_available=local.has_adapter,
        )
        assert route["kind"] == "user" and route["adapter"] == first.name
        reply = local.generate(
            [{"role": "user", "content": "hi"}], adapter=first.name, max_new_tokens=3, seed=1
        )
        assert reply.usage is not None

        second = _candidate(session, user, adapters_dir, tiny, 2)
        assert second.parent_id == first.id  # lineage
        rejected = _candidate(session, user, adapters_dir, tiny, 3)
        registry.record_gate(
            session, adapter_id=rejected.id, passed=False, reasons=["worse"], metrics={"x": 1}
        )
        assert rejected.status == "rejected" and rejected.metrics["gate"]["reasons"] == ["worse"]
        with pytest.raises(registry.RegistryError):
            registry.promote(
                session, adapter_id=rejected.id, adapters_dir=adapters_dir, publisher=backend
            )

        registry.promote(
            session, adapter_id=second.id, adapters_dir=adapters_dir, publisher=backend
        )
        assert loaded() == {first.name, second.name}  # the superseded one serves until commit
        session.commit()
        assert loaded() == {second.name}
        session.refresh(first)
        assert first.status == "retired" and first.status_reason == registry.SUPERSEDED
        assert session.get(User, user.id).adapter_name == second.name  # type: ignore[union-attr]

        back = registry.rollback(
            session,
            owner_kind="user",
            owner_id=user.id,
            adapters_dir=adapters_dir,
            publisher=backend,
        )
        session.commit()
        assert loaded() == {first.name}
        assert back is not None and back.id == first.id and back.status == "promoted"
        session.refresh(second)
        assert second.status == "retired" and second.status_reason == registry.ROLLED_BACK
        assert session.get(User, user.id).adapter_name == first.name  # type: ignore[union-attr]

        registry.retire(session, adapter_id=first.id, reason="training data deleted")
        session.commit()
        assert session.get(User, user.id).adapter_name is None  # type: ignore[union-attr]
        with pytest.raises(registry.RegistryError):
            registry.rollback(
                session,
                owner_kind="user",
                owner_id=user.id,
                adapters_dir=adapters_dir,
                publisher=backend,
            )
        statuses = {
            a.version: a.status
            for a in registry.list_adapters(session, owner_kind="user", owner_id=user.id)
        }
        assert statuses == {1: "retired", 2: "retired", 3: "rejected"}
        assert isinstance(
            registry.list_adapters(session, owner_kind="user", owner_id=user.id)[0], AdapterRecord
        )


async def test_samples_route(api: Api):
    uid, key = api.new_user("writer")
    _, other_key = api.new_user("other")
    body = {"samples": [{"text": "First sample."}, {"text": "Second sample."}]}
    r = await api.client.post(f"/v1/users/{uid}/samples", json=body, headers=api.auth(key))
    assert r.status_code == 201, r.text
    assert r.json()["added"] == 2 and len(r.json()["ids"]) == 2
    r = await api.client.post(f"/v1/users/{uid}/samples", json=body, headers=api.auth(key))
    assert r.json() == {"added": 0, "skipped": 2, "ids": []}
    r = await api.client.post(f"/v1/users/{uid}/samples", json=body, headers=api.auth(other_key))
    assert r.status_code == 404
    bad: dict[str, Any]
    for bad in ({"samples": []}, {"samples": [{"text": ""}]}, {"samples": [{"text": "a\x00b"}]}):
        r = await api.client.post(f"/v1/users/{uid}/samples", json=bad, headers=api.auth(key))
        assert r.status_code == 422, bad


def test_deleting_training_data_retires_its_adapters(engine: Engine, tmp_path: Path):
    adapters_dir = tmp_path / "adapters"
    with Session(engine) as session:
        user, turns = _seed(session)
        snap = snapshot_owner(
            session, owner_kind="user", owner_id=user.id, root=str(tmp_path / "datasets")
        )
        record = registry.register_candidate(
            session,
            owner_kind="user",
            owner_id=user.id,
            kind="sft",
            version=1,
            base_model="tiny",
            dataset_snapshot_id=snap.id,
        )
        (adapters_dir / record.name).mkdir(parents=True)
        (adapters_dir / record.name / "adapter_config.json").write_text("{}")
        registry.promote(session, adapter_id=record.id, adapters_dir=adapters_dir, publisher=None)
        session.commit()
        user_id, record_id, down_turn = user.id, record.id, turns["down"].id
        used_turn = turns["edit"].id

    purger = AdapterPurger(engine, DerivedFiles(adapters_dir=tmp_path, datasets_url=None))
    # A turn no snapshot used retires nothing; one that was used retires the adapter.
    assert purger.purge(user_id, [down_turn]) == 0
    assert purger.purge(user_id, [used_turn]) == 1
    with Session(engine) as session:
        retired = session.get(AdapterRecord, record_id)
        assert retired is not None and retired.status == "retired"
        assert retired.status_reason == "training data deleted"
        assert session.get(User, user_id).adapter_name is None  # type: ignore[union-attr]
    assert purger.purge(user_id, None) == 0  # already retired
