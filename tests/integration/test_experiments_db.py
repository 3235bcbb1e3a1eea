"""Experiment records on SQLite and PostgreSQL: exposures, the rows behind the metrics,
and deletion of a user (foreign keys) taking their exposures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from graph.experiment_book import ExperimentBook
from graph.experiments import Arm, choose_arm
from memory.records import experiments as records
from memory.records import repo
from memory.records.experiment_rows import exposed_turns
from memory.records.tables import Feedback, Thread, Turn, utcnow


def _user(engine: Engine, name: str) -> str:
    with Session(engine) as s:
        user, _ = repo.create_user(s, name=name)
        s.commit()
        return user.id


def test_exposures_outcomes_and_deletion(migrated_engine: Engine) -> None:
    engine = migrated_engine
    arms = [
        {"name": "control", "weight": 1},
        {"name": "b", "weight": 1, "settings": {"top_p": 0.5}},
    ]
    exp = records.create(
        engine, name="e", control="control", arms=arms, eligibility={}, starts_at=None, ends_at=None
    )
    book = ExperimentBook(engine, refresh_s=60)
    uid, other = _user(engine, "a"), _user(engine, "b")
    expected = choose_arm(exp.id, uid, [Arm.model_validate(a) for a in arms]).name
    t0 = utcnow()
    with Session(engine) as s:
        thread = Thread(user_id=uid)
        s.add(thread)
        s.flush()
        at = {"turn_u1": 0, "turn_a1": 1, "turn_a2": 2, "turn_u2": 3}

        def turn(turn_id: str, role: str, **kw: Any) -> Turn:
            created = t0 + timedelta(seconds=at[turn_id])
            return Turn(id=turn_id, user_id=uid, thread_id=thread.id, role=role, content="x",
                        created_at=created, **kw)  # fmt: skip

        # A user message, a reply, a regenerated reply to it, then another user message.
        s.add(turn("turn_u1", "user"))
        s.add(turn("turn_a1", "assistant", reply_to_id="turn_u1", latency_ms=120.0, ttft_ms=30.0))
        s.add(turn("turn_a2", "assistant", reply_to_id="turn_u1", latency_ms=80.0, ttft_ms=20.0))
        s.add(turn("turn_u2", "user"))
        s.commit()
        s.add(Feedback(user_id=uid, turn_id="turn_a2", rating="down", edited_text="better"))
        s.commit()
    got = book.assign_now(uid, None)
    assert [(a["name"], a["arm"]) for a in got] == [("e", expected)]
    chosen = {a["experiment_id"]: a["arm"] for a in got}
    for turn_id in ("turn_a1", "turn_a2"):
        records.expose(engine, turn_id=turn_id, user_id=uid, arms=chosen)
    records.expose(engine, turn_id="turn_a3", user_id=uid, arms=chosen, failed=True)
    other_arms = {a["experiment_id"]: a["arm"] for a in book.assign_now(other, None)}
    records.expose(engine, turn_id="turn_x1", user_id=other, arms=other_arms)
    rows = {(r.user_id, r.recorded, r.failed): r for r in exposed_turns(engine, exp.id)}
    first = next(r for r in exposed_turns(engine, exp.id) if r.latency_ms == 120.0)
    assert first.regenerated and first.followed_up and not first.thumbs_down
    second = next(r for r in exposed_turns(engine, exp.id) if r.latency_ms == 80.0)
    assert not second.regenerated and second.followed_up and second.thumbs_down and second.edited
    assert (uid, False, True) in rows and (other, False, False) in rows
    # Deleting the user (foreign keys on PostgreSQL) takes their exposures, not others'.
    with Session(engine) as s:
        repo.delete_user(s, user_id=uid)
        s.commit()
    with Session(engine) as s:
        left = s.exec(select(records.ExperimentExposure)).all()
        assert [e.user_id for e in left] == [other]
    records.stop_arm(engine, exp.id, "b", "guard rail: test")
    stopped = records.stop(engine, exp.id, "done")
    assert stopped is not None and stopped.state(utcnow()) == "stopped"
    assert records.running(engine) == []
    assert records.get(engine, "e") is not None and records.get(engine, exp.id) is not None
