"""Stored prompts and pairs name every turn whose text they hold (real SQLite and PostgreSQL).

A unique string said once, early in a thread, reaches a later reply's stored prompt, the
pair built from feedback on that reply and a dataset snapshot of the pairs; deleting the
early turn must remove all three, and new feedback must not rebuild the pair. Migration
0008 backfills the sources of rows stored before prompts kept them.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from adapters.dataset_sources import preference_pairs, snapshot_owner
from adapters.deletion import DerivedFiles, purge_for_deleted_data
from adapters.records import AdapterRecord, DatasetSnapshot
from memory import pairs
from memory.records import db
from memory.records.tables import Feedback, Memory, MemorySource, Profile, Thread, Turn, User

CANARY = "zebra-canary-7f3q marmalade"


def _turn(user_id: str, thread_id: str, role: str, text: str, reply_to: str | None = None) -> Turn:
    return Turn(user_id=user_id, thread_id=thread_id, role=role, content=text, reply_to_id=reply_to)


def _conversation(session: Session) -> dict[str, str]:
    """A user whose second question's prompt holds the canary (history) and a memory."""
    user = User(name="alice")
    session.add(user)
    session.flush()
    ids = {"user": user.id}
    old = _turn(user.id, "thr_old", "user", "I keep bees on the roof.")
    session.add(Thread(id="thr_old", user_id=user.id))
    session.add(Thread(id="thr_new", user_id=user.id))
    session.flush()
    session.add(old)
    memory = Memory(user_id=user.id, kind="fact", text="The user keeps bees.", content_hash="x")
    session.add(memory)
    session.flush()
    session.add(MemorySource(memory_id=memory.id, turn_id=old.id, user_id=user.id))
    first = _turn(user.id, "thr_new", "user", f"My secret word is {CANARY}.")
    session.add(first)
    session.flush()
    reply1 = _turn(user.id, "thr_new", "assistant", "Noted.", first.id)
    second = _turn(user.id, "thr_new", "user", "What should I cook tonight?")
    session.add_all([reply1, second])
    session.flush()
    reply2 = _turn(user.id, "thr_new", "assistant", "Soup.", second.id)
    session.add(reply2)
    session.flush()
    ids.update(old=old.id, memory=memory.id, first=first.id, reply1=reply1.id)
    ids.update(second=second.id, reply2=reply2.id)
    return ids


def _prompt(ids: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are Attune.\n- 2026-01-01: The user keeps bees."},
        {"role": "user", "content": f"My secret word is {CANARY}."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What should I cook tonight?"},
    ]


def _store_later_prompt(session: Session, ids: dict[str, str]) -> None:
    """Store the second reply's prompt as the graph does (naming the memory it quotes)."""
    pairs.store_prompt(
        session,
        turn_id=ids["reply2"],
        user_id=ids["user"],
        messages=_prompt(ids),
        memory_ids=[ids["memory"]],
    )


def _pair_on_later_reply(session: Session, ids: dict[str, str]) -> None:
    """Store the second reply's prompt, edit the reply, build the pair."""
    _store_later_prompt(session, ids)
    session.add(
        Feedback(user_id=ids["user"], turn_id=ids["reply2"], rating="down", edited_text="Stew.")
    )
    session.flush()
    pairs.build_pairs(session, user_id=ids["user"], turn_id=ids["reply2"])


def _rows_with(session: Session, needle: str) -> list[str]:
    """Stored prompts and pairs whose JSON holds ``needle``."""
    found = [
        f"prompt {p.turn_id}"
        for p in session.exec(select(pairs.TurnPrompt))
        if needle in json.dumps(p.messages)
    ]
    found += [
        f"pair {p.id}"
        for p in session.exec(select(pairs.PreferencePair))
        if needle in p.prompt[1]["content"]
    ]
    return found


def test_deleting_a_history_turn_reaches_prompts_pairs_and_snapshots(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    with Session(migrated_engine) as s:
        ids = _conversation(s)
        _pair_on_later_reply(s, ids)
        s.commit()
        stored = pairs.prompt_of(s, ids["reply2"])
        assert stored is not None
        # The question, the history and the quoted memory's source turn.
        assert {ids["first"], ids["reply1"], ids["second"], ids["old"]} <= set(
            stored.source_turn_ids
        )
        (pair,) = s.exec(select(pairs.PreferencePair)).all()
        assert ids["first"] in pair.sources["turn_ids"] and ids["old"] in pair.sources["turn_ids"]
        snapshot = snapshot_owner(s, owner_kind="user", owner_id=ids["user"], root=str(tmp_path))
        adapter = AdapterRecord(
            owner_kind="user",
            owner_id=ids["user"],
            version=1,
            kind="dpo",
            name=f"{ids['user']}-dpo-v1",
            base_model="tiny",
            dataset_snapshot_id=snapshot.id,
        )
        s.add(adapter)
        s.commit()
        assert ids["first"] in snapshot.source_turn_ids
        assert _rows_with(s, CANARY) != []
        adapter_id = adapter.id

    # The cascade's steps for the early turn (``Deletion.turn`` runs them in this order).
    with Session(migrated_engine) as s:
        assert pairs.delete_for_turns(s, user_id=ids["user"], turn_ids=[ids["first"]]) == 1
        s.commit()
    purge_for_deleted_data(
        migrated_engine, DerivedFiles(None, str(tmp_path)), ids["user"], [ids["first"]]
    )
    with Session(migrated_engine) as s:
        assert pairs.prompt_of(s, ids["reply2"]) is None
        assert _rows_with(s, CANARY) == []
        assert s.exec(select(DatasetSnapshot)).all() == []
        retired = s.get(AdapterRecord, adapter_id)  # trained on the history turn's text
        assert retired is not None and retired.status == "retired"
        assert not any(CANARY.encode() in p.read_bytes() for p in tmp_path.rglob("*.jsonl"))
        # New feedback on the later reply has no prompt left to build a pair from.
        s.add(
            Feedback(user_id=ids["user"], turn_id=ids["reply2"], rating="down", edited_text="Pie.")
        )
        s.flush()
        assert pairs.build_pairs(s, user_id=ids["user"], turn_id=ids["reply2"])["skipped"] == 1
        assert _rows_with(s, CANARY) == []


def test_a_pair_naming_a_reply_as_history_does_not_hide_that_replys_own_edit(
    migrated_engine: Engine,
) -> None:
    with Session(migrated_engine) as s:
        ids = _conversation(s)
        _pair_on_later_reply(s, ids)
        # The first reply has no stored prompt (say it was recorded before prompts were
        # kept), so its edit makes a pair from the plain question.
        s.add(
            Feedback(user_id=ids["user"], turn_id=ids["reply1"], rating="down", edited_text="OK!")
        )
        s.flush()
        found = preference_pairs(s, user_ids=[ids["user"]])
        assert {p.source_id for p in found} == {ids["second"], ids["reply1"]}


def test_a_prompt_names_the_messages_its_interests_came_from(migrated_engine: Engine) -> None:
    with Session(migrated_engine) as s:
        ids = _conversation(s)
        said = _turn(ids["user"], "thr_old", "user", "I really love Quokka_Canary hikes.")
        s.add(said)
        s.add(Profile(user_id=ids["user"], data={"interests": ["quokka_canary hikes"]}))
        s.flush()
        _store_later_prompt(s, ids)
        stored = pairs.prompt_of(s, ids["reply2"])
        assert stored is not None and said.id in stored.source_turn_ids


def test_a_regeneration_inherits_the_sources_of_the_prompt_it_resends(
    migrated_engine: Engine,
) -> None:
    with Session(migrated_engine) as s:
        ids = _conversation(s)
        _store_later_prompt(s, ids)
        again = _turn(ids["user"], "thr_new", "assistant", "Salad.", ids["second"])
        s.add(again)
        s.flush()
        pairs.store_prompt(s, turn_id=again.id, user_id=ids["user"], messages=_prompt(ids))
        regenerated = pairs.prompt_of(s, again.id)
        assert regenerated is not None and ids["old"] in regenerated.source_turn_ids


def test_migration_0008_backfills_prompts_pairs_and_snapshots(
    migrated_engine: Engine,
) -> None:
    engine = migrated_engine
    command.downgrade(db.alembic_config(engine), "0007")  # the schema before 0008, then rows
    # The models hold columns later migrations add: lend them to the ORM for the insert.
    later = {"prompt_versions": "JSON", "status": "VARCHAR(16)"}
    with engine.begin() as conn:
        for name, kind in later.items():
            conn.execute(sa.text(f"ALTER TABLE turns ADD COLUMN {name} {kind}"))
    with Session(engine) as s:
        ids = _conversation(s)
        s.commit()
    with engine.begin() as conn:
        for name in later:
            conn.execute(sa.text(f"ALTER TABLE turns DROP COLUMN {name}"))
    prompt = _prompt(ids)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO turn_prompts (turn_id, user_id, messages, created_at) "
                "VALUES (:t, :u, :m, CURRENT_TIMESTAMP)"
            ),
            {"t": ids["reply2"], "u": ids["user"], "m": json.dumps(prompt)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO preference_pairs (id, user_id, prompt_turn_id, prompt, chosen, "
                "rejected, rule, sources, created_at) VALUES ('pair_old', :u, :p, :m, 'Stew.', "
                "'Soup.', 'edit', :src, CURRENT_TIMESTAMP)"
            ),
            {
                "u": ids["user"],
                "p": ids["second"],
                "m": json.dumps(prompt),
                "src": json.dumps({"turn_ids": [ids["second"], ids["reply2"]], "feedback_ids": []}),
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO dataset_snapshots (id, owner_kind, owner_id, version, content_hash, "
                "url, sft_count, dpo_count, size_bytes, source_turn_ids, source_sample_ids, "
                "created_at) VALUES ('ds_old', 'user', :u, 1, 'h', 'file:///x', 0, 1, 1, :src, "
                "'[]', CURRENT_TIMESTAMP)"
            ),
            {"u": ids["user"], "src": json.dumps([ids["second"], ids["reply2"]])},
        )
    db.upgrade(engine)
    with Session(engine) as s:
        stored = pairs.prompt_of(s, ids["reply2"])
        assert stored is not None
        wanted = {ids["first"], ids["reply1"], ids["second"], ids["old"]}
        assert wanted <= set(stored.source_turn_ids)
        pair = s.get(pairs.PreferencePair, "pair_old")
        assert pair is not None and wanted <= set(pair.sources["turn_ids"])
        snapshot = s.get(DatasetSnapshot, "ds_old")
        assert snapshot is not None and ids["first"] in snapshot.source_turn_ids
        # So deleting the early turn now finds all three.
        assert pairs.delete_for_turns(s, user_id=ids["user"], turn_ids=[ids["first"]]) == 1
        s.commit()
        assert pairs.prompt_of(s, ids["reply2"]) is None
