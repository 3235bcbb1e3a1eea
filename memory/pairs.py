"""Preference pairs from feedback, and the prompts they need.

A pair says: for this prompt, the user preferred ``chosen`` over ``rejected``. The prompt is
the exact list of messages the model was sent for the rejected (or rated) reply, stored
with every assistant turn as it is recorded (``TurnPrompt``).

Pairs come from three rules, applied to one prompt (one user turn) at a time:

* ``edit``: the user rewrote a reply — chosen is the edit, rejected the model's reply;
* ``regeneration``: a down-voted reply, then an up-voted regeneration of the same prompt —
  chosen the later, up-voted reply;
* ``up_vs_down``: an up-voted reply against a down-voted one for the same prompt, in any
  order other than the one above.

A turn's latest rating counts. Each pair's id is derived from what it compares, so
rebuilding adds nothing twice; a rating that changes removes the pairs it no longer
supports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from memory.provenance import prompt_sources
from memory.records.tables import Feedback, Turn, UTCDateTime, utcnow


class TurnPrompt(SQLModel, table=True):
    """The messages an assistant turn's model call was sent, exactly."""

    __tablename__ = "turn_prompts"

    turn_id: str = Field(primary_key=True, max_length=40)
    """The assistant turn."""
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    messages: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    source_turn_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    """Every turn whose text the messages hold (``memory.provenance``); deleting any of them
    deletes this prompt and the pairs built from it (migration 0008)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class PreferencePair(SQLModel, table=True):
    """Chosen over rejected, for a prompt, with where it came from."""

    __tablename__ = "preference_pairs"
    __table_args__ = (sa.Index("ix_preference_pairs_user_created", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    """``pair_`` + digest of (rule, chosen source, rejected source): rebuilding is a no-op."""
    user_id: str = Field(foreign_key="users.id", max_length=40)
    prompt_turn_id: str = Field(max_length=40, index=True)
    """The user turn both replies answer."""
    prompt: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    """The messages as sent to the model (system prompt, history, the user message)."""
    chosen: str = Field(sa_type=sa.Text)
    rejected: str = Field(sa_type=sa.Text)
    rule: str = Field(max_length=20)
    """``edit``, ``regeneration`` or ``up_vs_down``."""
    sources: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """``{"turn_ids": [...], "feedback_ids": [...]}``: every turn whose text the pair holds —
    the prompt turn, both replies and every turn of its stored prompt's sources (history,
    quoted memories, profile); deleting any of them removes the pair."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def store_prompt(
    session: Session,
    *,
    turn_id: str,
    user_id: str,
    messages: Sequence[dict[str, str]],
    memory_ids: Sequence[str] = (),
    history_ids: Sequence[str] | None = None,
) -> None:
    """Keep the messages sent for assistant turn ``turn_id``, with their sources (idempotent).

    The sources are every turn whose text the messages hold (``memory.provenance``), so
    deleting any of them finds this prompt. ``memory_ids`` are the memories the system
    prompt quotes and ``history_ids`` the turns of its messages, where the caller knows
    them (see ``provenance.prompt_sources``); a regeneration, which re-sends another
    reply's stored prompt, also takes over that prompt's sources.
    """
    if session.get(TurnPrompt, turn_id) is not None:
        return
    sent = [dict(m) for m in messages]
    inherited: set[str] = set()
    asked = session.exec(select(Turn.reply_to_id).where(Turn.id == turn_id)).first()
    if asked:
        siblings = select(Turn.id).where(Turn.user_id == user_id, Turn.reply_to_id == asked)
        for other in session.exec(select(TurnPrompt).where(col(TurnPrompt.turn_id).in_(siblings))):
            if other.messages == sent:
                inherited.update(other.source_turn_ids)
    if inherited and history_ids is None:
        history_ids = []  # the sibling's sources name the history exactly; no text matching
    sources = inherited | set(
        prompt_sources(
            session,
            user_id=user_id,
            turn_id=turn_id,
            messages=sent,
            memory_ids=memory_ids,
            history_ids=history_ids,
        )
    )
    session.add(
        TurnPrompt(turn_id=turn_id, user_id=user_id, messages=sent, source_turn_ids=sorted(sources))
    )


def prompt_of(session: Session, turn_id: str) -> TurnPrompt | None:
    """The stored prompt of an assistant turn (``None`` before prompts were kept)."""
    return session.get(TurnPrompt, turn_id)


@dataclass(frozen=True)
class Rated:
    """An assistant reply to the prompt, with the user's latest feedback on it."""

    turn_id: str
    content: str
    created_at: datetime
    rating: str | None
    feedback_id: str | None
    edited_text: str | None


@dataclass(frozen=True)
class PairDraft:
    """A pair before it is stored."""

    rule: str
    chosen: str
    rejected: str
    prompt_from: str
    """The assistant turn whose stored prompt the pair uses."""
    turn_ids: tuple[str, ...]
    feedback_ids: tuple[str, ...]

    @property
    def id(self) -> str:
        """Deterministic id: the same comparison always gets the same id."""
        digest = hashlib.sha256("|".join([self.rule, *self.turn_ids, self.chosen]).encode())
        return f"pair_{digest.hexdigest()[:32]}"


def plan_pairs(replies: Sequence[Rated]) -> list[PairDraft]:
    """The pairs that the replies to one prompt support (pure; the rules above)."""
    drafts: list[PairDraft] = []
    for r in replies:
        if r.edited_text and r.edited_text.strip() and r.edited_text.strip() != r.content.strip():
            drafts.append(
                PairDraft(
                    rule="edit",
                    chosen=r.edited_text,
                    rejected=r.content,
                    prompt_from=r.turn_id,
                    turn_ids=(r.turn_id,),
                    feedback_ids=(r.feedback_id,) if r.feedback_id else (),
                )
            )
    ups = [r for r in replies if r.rating == "up"]
    downs = [r for r in replies if r.rating == "down"]
    for up in ups:
        for down in downs:
            later = (up.created_at, up.turn_id) > (down.created_at, down.turn_id)
            drafts.append(
                PairDraft(
                    rule="regeneration" if later else "up_vs_down",
                    chosen=up.content,
                    rejected=down.content,
                    prompt_from=down.turn_id,
                    turn_ids=(up.turn_id, down.turn_id),
                    feedback_ids=tuple(f for f in (up.feedback_id, down.feedback_id) if f),
                )
            )
    return drafts


def _replies(session: Session, user_id: str, prompt_turn_id: str) -> list[Rated]:
    turns = session.exec(
        select(Turn)
        .where(
            Turn.user_id == user_id,
            Turn.reply_to_id == prompt_turn_id,
            Turn.role == "assistant",
        )
        .order_by(col(Turn.created_at), col(Turn.id))
    ).all()
    ids = [t.id for t in turns]
    latest: dict[str, Feedback] = {}
    for row in session.exec(
        select(Feedback)
        .where(Feedback.user_id == user_id, col(Feedback.turn_id).in_(ids))
        .order_by(col(Feedback.created_at), col(Feedback.id))
    ).all():
        latest[row.turn_id] = row  # the last one wins
    out = []
    for t in turns:
        fb = latest.get(t.id)
        out.append(
            Rated(
                turn_id=t.id,
                content=t.content,
                created_at=t.created_at,
                rating=fb.rating if fb else None,
                feedback_id=fb.id if fb else None,
                edited_text=fb.edited_text if fb else None,
            )
        )
    return out


def build_pairs(session: Session, *, user_id: str, turn_id: str) -> dict[str, int]:
    """Rebuild the pairs of the prompt that assistant turn ``turn_id`` answers.

    Returns counts: ``added``, ``kept``, ``removed`` and ``skipped`` (drafts whose prompt
    was never stored, from turns recorded before prompts were kept). The caller commits.
    """
    counts = {"added": 0, "kept": 0, "removed": 0, "skipped": 0}
    turn = session.get(Turn, turn_id)
    if turn is None or turn.user_id != user_id or turn.reply_to_id is None:
        return counts
    prompt_turn_id = turn.reply_to_id
    drafts = plan_pairs(_replies(session, user_id, prompt_turn_id))
    existing = {
        p.id: p
        for p in session.exec(
            select(PreferencePair).where(
                PreferencePair.user_id == user_id,
                PreferencePair.prompt_turn_id == prompt_turn_id,
            )
        ).all()
    }
    wanted: set[str] = set()
    for d in drafts:
        if d.id in existing:
            wanted.add(d.id)
            counts["kept"] += 1
            continue
        stored = prompt_of(session, d.prompt_from)
        if stored is None:
            counts["skipped"] += 1
            continue
        wanted.add(d.id)
        session.add(
            PreferencePair(
                id=d.id,
                user_id=user_id,
                prompt_turn_id=prompt_turn_id,
                prompt=stored.messages,
                chosen=d.chosen,
                rejected=d.rejected,
                rule=d.rule,
                sources={
                    "turn_ids": list(
                        dict.fromkeys([prompt_turn_id, *d.turn_ids, *stored.source_turn_ids])
                    ),
                    "feedback_ids": [*d.feedback_ids],
                },
            )
        )
        counts["added"] += 1
    for pair_id, pair in existing.items():
        if pair_id not in wanted:
            session.delete(pair)
            counts["removed"] += 1
    session.flush()
    return counts


def list_pairs(
    session: Session, *, user_id: str, limit: int = 100, offset: int = 0
) -> tuple[Sequence[PreferencePair], int]:
    """A page of the user's pairs, newest first, and the total."""
    total = int(
        session.exec(
            select(sa.func.count())
            .select_from(PreferencePair)
            .where(PreferencePair.user_id == user_id)
        ).one()
    )
    rows = session.exec(
        select(PreferencePair)
        .where(PreferencePair.user_id == user_id)
        .order_by(col(PreferencePair.created_at).desc(), col(PreferencePair.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, total


def delete_for_turns(session: Session, *, user_id: str, turn_ids: Sequence[str]) -> int:
    """Delete the user's pairs and stored prompts holding text of ``turn_ids``; pairs removed.

    A pair goes when any turn of its sources is among them (its prompt turn, either reply,
    or a turn of its prompt's history, memories or profile); a stored prompt goes when it
    was sent for one of them or any of its sources is among them.
    """
    doomed = set(turn_ids)
    removed = 0
    for pair in session.exec(select(PreferencePair).where(PreferencePair.user_id == user_id)).all():
        if doomed & set(pair.sources.get("turn_ids", [])):
            session.delete(pair)
            removed += 1
    for prompt in session.exec(select(TurnPrompt).where(TurnPrompt.user_id == user_id)).all():
        if prompt.turn_id in doomed or doomed & set(prompt.source_turn_ids):
            session.delete(prompt)
    return removed


def delete_for_user(session: Session, *, user_id: str) -> int:
    """Delete all of the user's pairs and stored prompts; return how many pairs."""
    pairs = session.exec(sa.delete(PreferencePair).where(col(PreferencePair.user_id) == user_id))
    session.exec(sa.delete(TurnPrompt).where(col(TurnPrompt.user_id) == user_id))
    return int(pairs.rowcount)
