"""The record store as the graph and the API see it: async methods over sync sessions.

SQLModel sessions are synchronous; each method runs in a worker thread so the event loop
keeps streaming other turns while the database works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from memory.persona import forget, procedural
from memory.persona import profile as profiles
from memory.persona.instructions import ProfileUpdate
from memory.records import repo
from memory.records.tables import Thread, Turn, utcnow

T = TypeVar("T")


@dataclass(frozen=True)
class UserContext:
    """What a turn needs to know about its user."""

    user_id: str
    profile: dict[str, Any] = field(default_factory=dict)
    profile_version: int = 0
    learned: str | None = None
    adapter: str | None = None
    group_adapter: str | None = None
    group_id: str | None = None


class RecordStore:
    """Records of users, threads, turns and profiles over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        """Wrap ``engine``; the caller disposes of it."""
        self.engine = engine

    def session(self) -> Session:
        """A new session (use as a context manager; commit explicitly)."""
        return Session(self.engine, expire_on_commit=False)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a new session in a worker thread, commit, return its result."""

        def work() -> T:
            with self.session() as session:
                result = fn(session)
                session.commit()
                return result

        return await asyncio.to_thread(work)

    async def load_user(self, user_id: str) -> UserContext:
        """The user's profile and adapter pointers."""

        def work(s: Session) -> UserContext:
            user = repo.get_user(s, user_id)
            if user is None:
                raise LookupError(f"unknown user {user_id}")
            prof = repo.get_profile(s, user_id=user_id)
            return UserContext(
                user_id=user_id,
                profile=dict(prof.data),
                profile_version=prof.version,
                learned=procedural.active_text(s, user_id=user_id),
                adapter=user.adapter_name,
                group_adapter=repo.group_adapter(s, group_id=user.group_id),
                group_id=user.group_id,
            )

        return await self.run(work)

    async def save_profile_updates(
        self, user_id: str, updates: Sequence[ProfileUpdate], *, source_turn_id: str | None
    ) -> tuple[dict[str, Any], int]:
        """Apply ``updates`` to the user's profile; return the new document and version."""

        def work(s: Session) -> tuple[dict[str, Any], int]:
            prof = profiles.save_updates(
                s, user_id=user_id, updates=updates, source_turn_id=source_turn_id
            )
            return dict(prof.data), prof.version

        return await self.run(work)

    async def retire_revoked(
        self, user_id: str, updates: Sequence[ProfileUpdate], *, before: dict[str, Any]
    ) -> list[str]:
        """Invalidate the instruction memories that revoking ``updates`` contradict."""
        return await self.run(
            lambda s: forget.retire_revoked(
                s, user_id=user_id, updates=updates, before=before, now=utcnow()
            )
        )

    async def record_exchange(
        self, *, thread_id: str, user_id: str, user_turn: Turn, assistant_turn: Turn
    ) -> None:
        """Persist a user message and its reply (idempotent by turn id)."""
        await self.run(
            lambda s: repo.record_exchange(
                s,
                thread_id=thread_id,
                user_id=user_id,
                user_turn=user_turn,
                assistant_turn=assistant_turn,
            )
        )

    async def accept_message(self, *, thread_id: str, user_id: str, user_turn: Turn) -> None:
        """Persist a user message as its request is accepted (before any reply)."""
        await self.run(
            lambda s: repo.accept_message(
                s, thread_id=thread_id, user_id=user_id, user_turn=user_turn
            )
        )

    async def mark_interrupted(self, turn_id: str) -> None:
        """The reply to user turn ``turn_id`` never finished."""
        await self.run(lambda s: repo.mark_interrupted(s, turn_ids=[turn_id]))

    def sweep_interrupted(self, *, older_than: timedelta) -> int:
        """Mark user turns left without a reply for ``older_than`` (a crash's leftovers)."""
        with self.session() as session:
            marked = repo.mark_interrupted(
                session, turn_ids=repo.unanswered(session, before=utcnow() - older_than)
            )
            session.commit()
        return marked

    async def thread_owner(self, thread_id: str) -> str | None:
        """The user who owns ``thread_id``, or ``None`` if there is no such thread."""

        def work(s: Session) -> str | None:
            thread = s.get(Thread, thread_id)
            return thread.user_id if thread is not None else None

        return await self.run(work)

    async def find_thread(self, user_id: str, conversation_hash: str) -> str | None:
        """The user's thread whose conversation so far has digest ``conversation_hash``."""
        return await self.run(
            lambda s: repo.find_thread_by_conversation(
                s, user_id=user_id, conversation_hash=conversation_hash
            )
        )
