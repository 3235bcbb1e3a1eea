"""The training part of the export: own snapshots whole, group ones without other members'.

Real SQLite and PostgreSQL; snapshots written to a temporary directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.dataset_sources import add_samples, snapshot_owner
from adapters.export import TrainingExport
from adapters.records import AdapterRecord
from memory.records.tables import Feedback, Thread, Turn, User, UserGroup

CANARY = "tapir-canary-0w9e"


def _member(session: Session, group_id: str, name: str, said: str) -> tuple[str, str]:
    """A group member with one up-voted reply to ``said``; (user id, question turn id)."""
    user = User(name=name, group_id=group_id)
    session.add(user)
    session.flush()
    session.add(Thread(id=f"thr_{name}", user_id=user.id))
    session.flush()
    asked = Turn(user_id=user.id, thread_id=f"thr_{name}", role="user", content=said)
    session.add(asked)
    session.flush()
    reply = Turn(
        user_id=user.id,
        thread_id=f"thr_{name}",
        role="assistant",
        content="Sure.",
        reply_to_id=asked.id,
    )
    session.add(reply)
    session.flush()
    session.add(Feedback(user_id=user.id, turn_id=reply.id, rating="up"))
    session.flush()
    return user.id, reply.id


def test_export_lists_own_and_pooled_training_data_only(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    with Session(migrated_engine, expire_on_commit=False) as s:
        group = UserGroup(name="crew")
        s.add(group)
        s.flush()
        alice, alice_reply = _member(s, group.id, "alice", f"Tell me about {CANARY}")
        bob, bob_reply = _member(s, group.id, "bob", "Bob's private question")
        add_samples(s, user_id=alice, texts=[f"My sample on {CANARY}."])
        own = snapshot_owner(s, owner_kind="user", owner_id=alice, root=str(tmp_path))
        pooled = snapshot_owner(s, owner_kind="group", owner_id=group.id, root=str(tmp_path))
        s.add(
            AdapterRecord(
                owner_kind="group",
                owner_id=group.id,
                version=1,
                kind="sft",
                name=f"{group.id}-sft-v1",
                base_model="tiny",
                dataset_snapshot_id=pooled.id,
                parent_id=None,
            )
        )
        s.commit()
        assert bob_reply in pooled.source_turn_ids

    out = TrainingExport(migrated_engine).export(alice)
    assert [x["text"] for x in out["samples"]] == [f"My sample on {CANARY}."]
    snapshots = {x["id"]: x for x in out["dataset_snapshots"]}
    assert set(snapshots) == {own.id, pooled.id}
    assert CANARY in json.dumps(snapshots[own.id]["records"])
    assert snapshots[own.id]["manifest"]["content_hash"] == own.content_hash
    group_row = snapshots[pooled.id]
    assert "records" not in group_row and "manifest" not in group_row
    assert alice_reply in group_row["source_turn_ids"]
    assert bob_reply not in json.dumps(out)  # nothing of the other member's
    assert [a["dataset_snapshot_id"] for a in out["adapters"]] == [pooled.id]
    assert TrainingExport(migrated_engine).export(bob)["samples"] == []
