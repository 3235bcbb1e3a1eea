"""Export of everything held about a user, and deletion of single turns.

The export is documented as everything held, so it has a section for every store that
holds the user's text or what was derived from it. The memory side is here: records,
memories with sources, profile and its history, learned instruction blocks, stored
prompts (with the turns they hold) and preference pairs. What other packages hold
(training samples, dataset snapshots, adapters) comes from :class:`ExportSection` objects
that the composition root (``wiring.services``) hands to :class:`UserExport`, as it hands
purgers to ``memory.deletion.Deletion``; thread state lives with the graph's checkpointer
and the API adds it (``graph.thread_export``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import literal, tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from memory import derived
from memory.pairs import PreferencePair, TurnPrompt
from memory.persona import procedural
from memory.persona import profile as profiles
from memory.records import experiments
from memory.records.tables import (
    Feedback,
    IdempotentRequest,
    Profile,
    ProfileChange,
    ProfileVersion,
    Thread,
    Turn,
    User,
)
from memory.service import MemoryService


class ExportSection(Protocol):
    """What another package holds about a user, for the export (memory cannot import it)."""

    def export(self, user_id: str) -> dict[str, Any]:
        """Top-level export keys → JSON-ready values; only the user's own data."""
        ...


EXPORT_BATCH = 500
"""Rows read per query while an export streams (each batch is one short read)."""


@dataclass(frozen=True)
class Rows:
    """An export section too long to hold at once: a JSON array produced batch by batch.

    Attributes:
        batches: Yields lists of JSON-ready rows, each read in its own short session.
    """

    batches: Iterator[list[dict[str, Any]]]


Part = tuple[str, Any]
"""A top-level export key and its value: JSON-ready, or :class:`Rows`."""


@dataclass(frozen=True)
class UserExport:
    """The export of one deployment, built once at the composition root.

    Attributes:
        engine: The record store.
        memory: The memory service.
        sections: What other packages hold (training data, adapters, ...).
    """

    engine: Engine
    memory: MemoryService
    sections: Sequence[ExportSection] = ()

    def parts(self, user_id: str, *, batch: int = EXPORT_BATCH) -> Iterator[Part]:
        """Everything held about the user, key by key, long sections a batch at a time.

        The generator reads as it is consumed, so a caller writing each part out (the
        streamed ``GET /v1/users/{id}/export``) holds one batch at a time, whatever the
        size of the history.

        Raises:
            LookupError: No such user (at the first part).
        """
        yield from export_parts(self.engine, self.memory, user_id, batch=batch)
        for section in self.sections:
            yield from section.export(user_id).items()

    def user(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user, as one JSON-ready dict (:meth:`parts`, joined).

        Raises:
            LookupError: No such user.
        """
        return collect(self.parts(user_id))


def collect(parts: Iterable[Part]) -> dict[str, Any]:
    """``parts`` as one dict, every :class:`Rows` read into a list."""
    return {
        key: [row for rows in value.batches for row in rows] if isinstance(value, Rows) else value
        for key, value in parts
    }


def _dump(row: Any) -> dict[str, Any]:
    return dict(row.model_dump(mode="json"))


def export_user(engine: Engine, memory: MemoryService, user_id: str) -> dict[str, Any]:
    """The user's records, memories, profile, feedback, stored prompts and pairs.

    Memories come with their sources and validity, the profile with its change log and
    versions, stored prompts with the turns whose text they hold, pairs with theirs.

    Raises:
        LookupError: No such user.
    """
    return collect(export_parts(engine, memory, user_id))


def export_parts(
    engine: Engine, memory: MemoryService, user_id: str, *, batch: int = EXPORT_BATCH
) -> Iterator[Part]:
    """:func:`export_user` key by key; threads, turns and the other long lists as :class:`Rows`.

    Long lists are read in pages of ``batch`` rows in a stable order (keyset pagination on
    the order's columns, ending with a unique one), each page in its own session, so no
    read holds the database for the length of a download.

    Raises:
        LookupError: No such user (at the first part).
    """
    with Session(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise LookupError(user_id)
        first = _dump(user)
    yield "user", first

    def rows(model: Any, *order: Any) -> Rows:
        where = col(model.user_id) == user_id
        return Rows(_pages(engine, model, where, [col(c) for c in order], batch))

    yield "threads", rows(Thread, Thread.created_at, Thread.id)
    yield "turns", rows(Turn, Turn.created_at, Turn.id)
    yield "feedback", rows(Feedback, Feedback.created_at, Feedback.id)
    with Session(engine) as session:
        profile = session.get(Profile, user_id)
        current = _dump(profile) if profile else None
    yield "profile", current
    yield "profile_history", rows(ProfileChange, ProfileChange.created_at, ProfileChange.id)
    yield "profile_versions", rows(ProfileVersion, ProfileVersion.version)
    with Session(engine) as session:
        blocks = [_dump(b) for b in procedural.list_blocks(session, user_id=user_id)]
    yield "instruction_blocks", blocks
    yield "stored_prompts", rows(TurnPrompt, TurnPrompt.created_at, TurnPrompt.turn_id)
    yield "preference_pairs", rows(PreferencePair, PreferencePair.created_at, PreferencePair.id)
    yield "memories", Rows(_memory_pages(memory, user_id, batch))


def _pages(
    engine: Engine, model: Any, where: Any, order: Sequence[Any], batch: int
) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``model`` matching ``where`` in ``order``, ``batch`` at a time."""
    after: tuple[Any, ...] | None = None
    while True:
        query = select(model).where(where)
        if after is not None:
            bounds = (literal(value, type_=c.type) for value, c in zip(after, order, strict=True))
            query = query.where(tuple_(*order) > tuple_(*bounds))
        with Session(engine) as session:
            found = session.exec(query.order_by(*order).limit(batch)).all()
            page = [_dump(r) for r in found]
            if found:
                after = tuple(getattr(found[-1], c.key) for c in order)
        if page:
            yield page
        if len(found) < batch:
            return


def _memory_pages(
    memory: MemoryService, user_id: str, batch: int
) -> Iterator[list[dict[str, Any]]]:
    """The user's memories with their sources, newest first, ``batch`` at a time."""
    offset = 0
    while True:
        page, total = memory.list(user_id, limit=batch, offset=offset)
        if page:
            yield [v.as_dict() for v in page]
        offset += len(page)
        if not page or offset >= total:
            return


def delete_turn(engine: Engine, memory: MemoryService, user_id: str, turn_id: str) -> str | None:
    """Delete one of the user's turns, its feedback and everything derived from it.

    Memories with the turn as a source, what it caused in the profile (``forget_turns``),
    the style and interests recomputed without it (``forget_derived``), a thread title and
    learned instruction blocks derived from it (``memory.derived``).

    Returns the turn's thread id (so the caller can drop it from thread state), or ``None``
    when the user has no such turn.
    """
    with Session(engine) as session:
        turn = session.get(Turn, turn_id)
        if turn is None or turn.user_id != user_id:
            return None
        thread_id = turn.thread_id
    memory.delete_for_turns(user_id, [turn_id])
    with Session(engine) as session:
        profiles.forget_turns(session, user_id=user_id, turn_ids=[turn_id])
        # Text derived from the turn without naming it: found while the turn still exists.
        profiles.forget_derived(session, user_id=user_id, turn_ids=[turn_id])
        derived.retitle_threads(session, user_id=user_id, turn_ids=[turn_id])
        derived.forget_feedback_blocks(session, user_id=user_id, turn_ids=[turn_id])
        session.exec(delete(Feedback).where(col(Feedback.turn_id) == turn_id))
        session.exec(
            delete(IdempotentRequest).where(
                (col(IdempotentRequest.turn_id) == turn_id)
                | (col(IdempotentRequest.user_turn_id) == turn_id)
            )
        )
        experiments.delete_for_turns(session, [turn_id])
        session.exec(delete(Turn).where(col(Turn.id) == turn_id))
        session.commit()
    return thread_id
