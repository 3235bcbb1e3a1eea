"""Provenance of derived text: which turns' words a composed prompt holds.

A stored prompt (``memory.pairs.TurnPrompt``) is the exact list of messages a model call was
sent, so it holds the text of many turns besides the one it answered: the thread's history,
memories quoted in the system prompt (an episodic memory *is* a turn, a fact was extracted
from one), profile values and instructions set by a turn, and the learned instruction
block distilled from feedback on turns. Deletion finds derived items by the turns they
name, so a prompt — and every pair, snapshot and adapter built from it — must name all of
them. :func:`prompt_sources` collects them when a prompt is stored; the pure helpers
:func:`history_turns` and :func:`quoting_memories` also serve migration 0008, which
backfills the sources of prompts and pairs stored before they were kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, func, or_, select

from memory.persona.document import normalize
from memory.records.tables import (
    Feedback,
    InstructionBlock,
    MemorySource,
    Profile,
    ProfileChange,
    Turn,
)

Message = dict[str, str]


def history_turns(messages: Sequence[Message], turns: Iterable[tuple[str, str, str]]) -> list[str]:
    """The ids of ``turns`` (``(id, role, content)``) whose text is a message of the prompt.

    A turn matches a non-system message with the same role and exactly the same text
    (composing copies history messages verbatim). When two turns of a thread say the same
    thing both match: naming one turn too many only widens what a deletion removes.
    """
    said = {
        (m.get("role", ""), m.get("content", "")) for m in messages if m.get("role") != "system"
    }
    return sorted({tid for tid, role, content in turns if (role, content) in said})


def quoting_memories(messages: Sequence[Message], memories: Iterable[tuple[str, str]]) -> list[str]:
    """The ids of ``memories`` (``(id, text)``) whose text a system message quotes."""
    system = "\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
    return sorted({mid for mid, text in memories if text.strip() and text in system})


def memory_source_turns(session: Session, memory_ids: Sequence[str]) -> set[str]:
    """The turns the memories ``memory_ids`` were derived from."""
    if not memory_ids:
        return set()
    rows = session.exec(
        select(MemorySource.turn_id).where(col(MemorySource.memory_id).in_(list(memory_ids)))
    )
    return set(rows)


def profile_source_turns(session: Session, *, user_id: str) -> set[str]:
    """The turns whose words the profile holds now: its instructions', values', interests'.

    A field's current value was set by its latest change; only changes made by a turn
    (not edits or style recomputations) name one. Interests: see :func:`_interest_turns`.
    """
    profile = session.get(Profile, user_id)
    if profile is None:
        return set()
    data = normalize(profile.data)
    found = {r["source_turn_id"] for r in data.get("instructions", []) if r.get("source_turn_id")}
    latest: dict[str, str | None] = {}
    for change in session.exec(
        select(ProfileChange)
        .where(ProfileChange.user_id == user_id)
        .order_by(col(ProfileChange.version))
    ):
        latest[change.field] = change.source_turn_id  # a later change of the field wins
    found.update(t for f, t in latest.items() if t and f in data)
    found |= _interest_turns(session, user_id, data.get("interests", []))
    return found


def _interest_turns(session: Session, user_id: str, interests: Sequence[str]) -> set[str]:
    """The user's messages that name one of the profile's interests.

    Noticed interests are words of the user's messages but name no turn (the style
    refresh reads many at once), so every message that says one counts as its source.
    """
    topics = [t.lower() for t in interests if isinstance(t, str) and t.strip()]
    if not topics:
        return set()
    said = func.lower(Turn.content)
    rows = session.exec(
        select(Turn.id).where(
            Turn.user_id == user_id,
            Turn.role == "user",
            or_(*(said.contains(t, autoescape=True) for t in topics)),
        )
    )
    return set(rows)


def learned_source_turns(session: Session, *, user_id: str) -> set[str]:
    """The turns the active learned instruction block was distilled from.

    The optimizer shows the model each rated reply and the question it answered, so both
    are named.
    """
    block = session.exec(
        select(InstructionBlock).where(
            InstructionBlock.user_id == user_id, InstructionBlock.status == "active"
        )
    ).first()
    if block is None or not block.feedback_ids:
        return set()
    rows = session.exec(
        select(Turn.id, Turn.reply_to_id)
        .join(Feedback, col(Feedback.turn_id) == col(Turn.id))
        .where(col(Feedback.id).in_(list(block.feedback_ids)))
    ).all()
    return {t for row in rows for t in row if t}


def prompt_sources(
    session: Session,
    *,
    user_id: str,
    turn_id: str,
    messages: Sequence[Message],
    memory_ids: Sequence[str] = (),
    history_ids: Sequence[str] | None = None,
) -> list[str]:
    """Every turn whose text the prompt of assistant turn ``turn_id`` holds.

    Args:
        session: An open session (the turn is recorded already).
        user_id: The user.
        turn_id: The assistant turn the prompt was sent for.
        messages: The prompt, exactly as sent.
        memory_ids: The memories the system prompt quotes (from the turn's state).
        history_ids: The turns whose messages the prompt holds, when the caller knows them
            (the graph's state names its messages by turn id); ``None``: every recorded
            turn of the thread that says a message of the prompt (:func:`history_turns`).

    Returns:
        The turn ids, sorted: the question, the history, the quoted memories' sources, the
        profile's and the learned block's.
    """
    found: set[str] = set()
    turn = session.get(Turn, turn_id)
    if turn is not None and turn.user_id == user_id:
        if turn.reply_to_id:
            found.add(turn.reply_to_id)
        if history_ids is None:
            thread = session.exec(
                select(Turn.id, Turn.role, Turn.content).where(
                    Turn.user_id == user_id, Turn.thread_id == turn.thread_id
                )
            ).all()
            history_ids = history_turns(messages, [(i, r, c) for i, r, c in thread])
        found.update(history_ids)
    found |= memory_source_turns(session, memory_ids)
    found |= profile_source_turns(session, user_id=user_id)
    found |= learned_source_turns(session, user_id=user_id)
    return sorted(found)
