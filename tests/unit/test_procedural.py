"""Procedural memory's machinery on a real SQLite database, with a scripted model.

The chat and embedding functions are fakes (this is the gate's logic); the real local
model and MiniLM run the same path in ``tests/integration/test_persona_local.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from memory.config import DatabaseSettings
from memory.persona import procedural
from memory.records import repo
from memory.records.db import open_engine
from memory.records.tables import Feedback, Turn, new_id


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'p.db'}"))
    yield engine
    engine.dispose()


def _rated(session: Session, user_id: str, n: int) -> None:
    for i in range(n):
        thread = new_id("thr")
        q = Turn(user_id=user_id, thread_id=thread, role="user", content=f"question {i}")
        a = Turn(
            user_id=user_id,
            thread_id=thread,
            role="assistant",
            content=f"long answer {i}",
            reply_to_id=q.id,
        )
        repo.record_exchange(
            session, thread_id=thread, user_id=user_id, user_turn=q, assistant_turn=a
        )
        session.add(
            Feedback(
                user_id=user_id,
                turn_id=a.id,
                rating="down",
                edited_text=f"short {i}",
                comment="too long",
            )
        )
    session.flush()


def _vector(text: str) -> list[float]:
    # Two axes: "short" answers and "long" ones; enough to make the score move.
    return [float("short" in text) + 0.01, float("long" in text) + 0.01]


class Model:
    """Answers briefly only when the system prompt says "Be brief"."""

    def __init__(self, proposal: str) -> None:
        self.proposal = proposal
        self.calls: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls.append(messages)
        first = messages[0]["content"]
        if messages[0]["role"] == "user":  # critique or rewrite
            return "Wants short answers." if "what this user wants" in first else self.proposal
        return "short reply" if "Be brief" in first else "long reply"


def _optimize(session: Session, user_id: str, model: Model) -> procedural.OptimizeResult:
    return procedural.optimize(
        session,
        user_id=user_id,
        chat=model,
        embed=lambda texts: [_vector(t) for t in texts],
        render=lambda name, v: f"{name}: {v.get('critique', 'what this user wants?')}",
        system=lambda block: f"You are Attune.\n{block or ''}",
    )


def test_a_better_block_is_activated_a_worse_one_rejected_and_rollback_restores(
    engine: Engine,
) -> None:
    with Session(engine) as s:
        user, _ = repo.create_user(s, name="u")
        assert _optimize(s, user.id, Model("Be brief.")).status == "skipped"  # no feedback
        _rated(s, user.id, 3)
        first = _optimize(s, user.id, Model("Be brief."))
        assert first.status == "activated" and first.block is not None
        assert first.details["score"] > first.details["baseline"]
        assert procedural.active_text(s, user_id=user.id) == "Be brief."
        again = _optimize(s, user.id, Model("Be brief."))
        assert again.status == "skipped"  # same feedback: a redelivered task does nothing

        _rated(s, user.id, 1)
        worse = _optimize(s, user.id, Model("Write at length."))
        assert worse.status == "rejected" and worse.block is not None
        assert worse.block.parent_id == first.block.id
        assert procedural.active_text(s, user_id=user.id) == "Be brief."
        assert "rejected: scored" in worse.block.reason

        assert procedural.rollback(s, user_id=user.id) is None  # v1 replaced nothing
        assert procedural.active_text(s, user_id=user.id) is None
        restored = procedural.activate(s, user_id=user.id, block_id=first.block.id, reason="manual")
        assert restored.status == "active"
        versions = [(b.version, b.status) for b in procedural.list_blocks(s, user_id=user.id)]
        assert versions == [(2, "rejected"), (1, "active")]
        with pytest.raises(procedural.NoBlockError):
            procedural.activate(s, user_id="usr_other", block_id=first.block.id, reason="x")


def test_examples_pair_each_rating_with_the_question_it_answered(engine: Engine) -> None:
    with Session(engine) as s:
        user, _ = repo.create_user(s, name="u")
        other, _ = repo.create_user(s, name="o")
        _rated(s, user.id, 2)
        _rated(s, other.id, 1)
        examples = procedural.recent_examples(s, user_id=user.id)
        assert sorted(e.prompt for e in examples) == ["question 0", "question 1"]
        assert {e.edited_text for e in examples} == {"short 0", "short 1"}


def test_refresh_style_measures_the_users_own_messages_and_notices_interests(
    engine: Engine,
) -> None:
    from memory.persona import profile as profiles

    with Session(engine) as s:
        user, _ = repo.create_user(s, name="u")
        for text in ("hi 👋", "I love sailing and chess", "ok cool 😎", "thx"):
            thread = new_id("thr")
            q = Turn(user_id=user.id, thread_id=thread, role="user", content=text)
            a = Turn(user_id=user.id, thread_id=thread, role="assistant", content="A long reply.")
            repo.record_exchange(
                s, thread_id=thread, user_id=user.id, user_turn=q, assistant_turn=a
            )
        first = profiles.refresh_style(s, user_id=user.id)
        assert first.data["style"]["messages"] == 4  # the user's, not the assistant's
        assert first.data["style"]["emoji_rate"] == 0.5
        assert first.data["interests"] == ["sailing", "chess"]
        version = first.version
        assert profiles.refresh_style(s, user_id=user.id).version == version  # nothing new
        edited = profiles.replace(
            s, user_id=user.id, data={**first.data, "interests": ["sailing"]}, reason="edited"
        )
        edited_version = edited.version
        thread = new_id("thr")
        q = Turn(user_id=user.id, thread_id=thread, role="user", content="hello again")
        a = Turn(user_id=user.id, thread_id=thread, role="assistant", content="Hi!")
        repo.record_exchange(s, thread_id=thread, user_id=user.id, user_turn=q, assistant_turn=a)
        assert profiles.refresh_style(s, user_id=user.id).version == edited_version  # < 10 new
        again = profiles.refresh_style(s, user_id=user.id, every=1)
        assert again.version == edited_version + 1 and again.data["style"]["messages"] == 5
        assert again.data["interests"] == ["sailing"]  # "chess" was removed after it was said
