"""Derived text without a source link goes with its turn (real SQLite and PostgreSQL).

Thread titles, learned instruction blocks (critique, text, feedback ids) and the profile's
noticed interests and style are derived from turns without naming them; deleting the turn
re-derives or removes them (``memory.derived``, ``profile.forget_derived``).
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from memory import derived
from memory.persona import profile as profiles
from memory.records.tables import (
    Feedback,
    InstructionBlock,
    Profile,
    ProfileChange,
    ProfileVersion,
    Thread,
    Turn,
    User,
)

CANARY = "axolotl-canary-q8v2"


def _user(session: Session) -> str:
    user = User(name="alice")
    session.add(user)
    session.flush()
    return user.id


def _say(session: Session, user_id: str, thread_id: str, text: str, role: str = "user") -> Turn:
    if session.get(Thread, thread_id) is None:
        session.add(Thread(id=thread_id, user_id=user_id))
        session.flush()
    turn = Turn(user_id=user_id, thread_id=thread_id, role=role, content=text)
    session.add(turn)
    session.flush()
    return turn


def test_a_title_from_a_deleted_message_is_derived_again(migrated_engine: Engine) -> None:
    with Session(migrated_engine) as s:
        uid = _user(s)
        first = _say(s, uid, "thr_t", f"Plans for {CANARY}\nmore")
        _say(s, uid, "thr_t", "Second thoughts")
        s.get_one(Thread, "thr_t").title = f"Plans for {CANARY}"
        untouched = _say(s, uid, "thr_u", "Other thread")
        s.get_one(Thread, "thr_u").title = "Renamed by hand"
        s.commit()
        assert derived.retitle_threads(s, user_id=uid, turn_ids=[first.id, untouched.id]) == 1
        s.commit()
        assert s.get_one(Thread, "thr_t").title == "Second thoughts"
        assert s.get_one(Thread, "thr_u").title == "Renamed by hand"


def test_blocks_learned_from_deleted_feedback_go_and_the_parent_is_restored(
    migrated_engine: Engine,
) -> None:
    with Session(migrated_engine) as s:
        uid = _user(s)
        asked = _say(s, uid, "thr_b", f"Explain {CANARY}")
        reply = _say(s, uid, "thr_b", "An answer.", role="assistant")
        reply.reply_to_id = asked.id
        other = _say(s, uid, "thr_b", "Unrelated reply.", role="assistant")
        fb = Feedback(user_id=uid, turn_id=reply.id, rating="down", comment=f"not {CANARY}")
        kept_fb = Feedback(user_id=uid, turn_id=other.id, rating="up")
        s.add_all([fb, kept_fb])
        s.flush()
        v1 = InstructionBlock(
            user_id=uid, version=1, text="Be brief.", status="retired", feedback_ids=[kept_fb.id]
        )
        s.add(v1)
        s.flush()
        v2 = InstructionBlock(
            user_id=uid,
            version=2,
            text=f"Never mention {CANARY}.",
            status="active",
            parent_id=v1.id,
            critique=f"The user disliked {CANARY}.",
            feedback_ids=[fb.id, kept_fb.id],
        )
        s.add(v2)
        s.flush()
        v3 = InstructionBlock(
            user_id=uid, version=3, text="Be kind.", status="rejected", parent_id=v2.id
        )
        s.add(v3)
        s.commit()
        # Deleting the question reaches the feedback on its reply.
        assert derived.forget_feedback_blocks(s, user_id=uid, turn_ids=[asked.id]) == 1
        s.commit()
        blocks = {b.version: b for b in s.exec(select(InstructionBlock))}
        assert set(blocks) == {1, 3}
        assert blocks[1].status == "active" and blocks[3].parent_id == v1.id
        assert not any(CANARY in json.dumps(b.model_dump(mode="json")) for b in blocks.values())


def test_interests_and_style_are_recomputed_without_a_deleted_message(
    migrated_engine: Engine,
) -> None:
    with Session(migrated_engine) as s:
        uid = _user(s)
        texts = [f"I love {CANARY} and chess.", "I enjoy chess.", "ok", "fine thanks"]
        turns = [_say(s, uid, "thr_p", t) for t in texts]
        s.commit()
        profiles.refresh_style(s, user_id=uid, every=1)
        s.commit()
        profile = s.get_one(Profile, uid)
        assert CANARY in profile.data["interests"] and "chess" in profile.data["interests"]
        assert profile.data["style"]["messages"] == 4

        profiles.forget_derived(s, user_id=uid, turn_ids=[turns[0].id])
        s.commit()
        profile = s.get_one(Profile, uid)
        assert profile.data["interests"] == ["chess"]  # still said in a kept message
        assert profile.data["style"]["messages"] == 3
        held = [
            *(v.model_dump(mode="json") for v in s.exec(select(ProfileVersion))),
            *(c.model_dump(mode="json") for c in s.exec(select(ProfileChange))),
        ]
        assert CANARY not in json.dumps(held)
