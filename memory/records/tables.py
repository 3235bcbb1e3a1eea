"""SQLModel tables for Attune's records.

Schema changes go through Alembic (``memory/migrations``); never ``create_all`` in
production code. Ids are prefixed random strings (``usr_…``, ``thr_…``, ``turn_…``) so a
log line says what an id names.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``usr_3f2a…`` (32 hex digits after the prefix)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    SQLite drops the offset on the way in and hands back naive datetimes; this restores UTC
    on the way out, so times from SQLite and PostgreSQL compare alike.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Store naive values as UTC; convert aware ones to UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kw)


class UserGroup(SQLModel, table=True):
    """A cohort of users that share a group adapter for cold start."""

    __tablename__ = "user_groups"

    id: str = Field(default_factory=lambda: new_id("grp"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    adapter_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    """A person who chats with Attune."""

    __tablename__ = "users"

    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    group_id: str | None = Field(default=None, foreign_key="user_groups.id", max_length=40)
    adapter_name: str | None = Field(default=None, max_length=200)
    """The user's promoted LoRA adapter, when they have one."""
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """A bearer key. Only a SHA-256 digest is stored; keys are 256-bit random tokens."""

    __tablename__ = "api_keys"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    user_id: str | None = Field(default=None, foreign_key="users.id", index=True, max_length=40)
    """``None`` for the admin key."""
    is_admin: bool = False
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    """The key's first characters, for telling keys apart in listings."""
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Thread(SQLModel, table=True):
    """A conversation. Its message state lives in the LangGraph checkpointer under its id."""

    __tablename__ = "threads"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "external_id", name="uq_threads_user_external"),
    )

    id: str = Field(default_factory=lambda: new_id("thr"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    title: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=200)
    """The session id a history import gave this thread, unique per user."""
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Turn(SQLModel, table=True):
    """One message of a conversation, as said by the user or the assistant."""

    __tablename__ = "turns"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "external_id", name="uq_turns_user_external"),
        sa.Index("ix_turns_user_created", "user_id", "created_at"),
    )

    id: str = Field(default_factory=lambda: new_id("turn"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", max_length=40)
    thread_id: str = Field(foreign_key="threads.id", index=True, max_length=40)
    role: str = Field(max_length=16)
    """``user`` or ``assistant``."""
    speaker: str | None = Field(default=None, max_length=200)
    content: str = Field(sa_type=sa.Text)
    external_id: str | None = Field(default=None, max_length=200)
    """An id the client gave this turn (history imports), unique per user."""
    reply_to_id: str | None = Field(default=None, max_length=40)
    """For an assistant turn: the user turn it answers."""
    created_at: datetime = _ts()
    model_target: str | None = Field(default=None, max_length=200)
    """For an assistant turn: ``base``, ``user:<adapter>`` or ``group:<adapter>``."""
    prompt_version: str | None = Field(default=None, max_length=40)
    status: str | None = Field(default=None, max_length=16)
    """For a user turn: ``interrupted`` when its reply never finished (it failed, or the
    server stopped); ``None`` otherwise. Stored when the request is accepted (migration
    ``0012``), so a crash mid-reply loses no message."""
    prompt_versions: dict[str, str] | None = Field(default=None, sa_type=sa.JSON)
    """For an assistant turn: the active version of every prompt (migration ``0011``)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    conversation_hash: str | None = Field(default=None, max_length=64, index=True)
    """For an assistant turn: digest of the thread's messages up to and including it, so a
    client that resends the whole conversation continues the same thread."""


class IdempotentRequest(SQLModel, table=True):
    """A chat request sent with an ``Idempotency-Key``: a retry gets the stored response.

    It holds the reply's text (the response as sent), so it goes with either of its turns
    (``memory.export.delete_turn``) and with its user (``repo.delete_user``).
    """

    __tablename__ = "idempotent_requests"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    """Digest of the request body: the same key with another body is refused."""
    user_turn_id: str = Field(foreign_key="turns.id", index=True, max_length=40)
    turn_id: str = Field(foreign_key="turns.id", index=True, max_length=40)
    """The assistant turn the response carried."""
    response: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = _ts()


class Feedback(SQLModel, table=True):
    """A rating of an assistant turn by its user."""

    __tablename__ = "feedback"

    id: str = Field(default_factory=lambda: new_id("fb"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    turn_id: str = Field(foreign_key="turns.id", index=True, max_length=40)
    rating: str = Field(max_length=8)
    """``up`` or ``down``."""
    edited_text: str | None = Field(default=None, sa_type=sa.Text)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _ts()


class Profile(SQLModel, table=True):
    """A user's persona profile: a versioned JSON document (the Persona issue deepens it)."""

    __tablename__ = "profiles"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    version: int = 1
    updated_at: datetime = _ts()


class ProfileChange(SQLModel, table=True):
    """One change to a profile: what changed, why, and from which turn."""

    __tablename__ = "profile_changes"

    id: str = Field(default_factory=lambda: new_id("pch"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    version: int
    field: str = Field(max_length=100)
    old_value: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    new_value: Any = Field(default=None, sa_type=sa.JSON, nullable=True)
    reason: str = Field(max_length=500)
    source_turn_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _ts()


class ProfileVersion(SQLModel, table=True):
    """The whole profile document as it was at one version, for history and rollback."""

    __tablename__ = "profile_versions"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    reason: str = Field(max_length=500)
    created_at: datetime = _ts()


class InstructionBlock(SQLModel, table=True):
    """A version of a user's learned instruction block (procedural memory).

    The optimizer proposes ``candidate`` blocks from the user's feedback; the one that
    beat the block before it on the user's feedback examples is ``active``; the others are
    ``rejected`` or, once replaced or rolled back, ``retired``. Every version is kept.
    """

    __tablename__ = "instruction_blocks"
    __table_args__ = (sa.UniqueConstraint("user_id", "version", name="uq_blocks_user_version"),)

    id: str = Field(default_factory=lambda: new_id("blk"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    version: int
    text: str = Field(sa_type=sa.Text)
    status: str = Field(max_length=16)
    """``candidate``, ``active``, ``rejected`` or ``retired``."""
    parent_id: str | None = Field(default=None, max_length=40)
    """The block that was active when this one was proposed."""
    critique: str | None = Field(default=None, sa_type=sa.Text)
    score: float | None = None
    """This block's score on the feedback examples it was evaluated on."""
    baseline_score: float | None = None
    """The parent's score on the same examples, in the same run."""
    feedback_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    reason: str = Field(default="", max_length=500)
    created_at: datetime = _ts()
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Memory(SQLModel, table=True):
    """Something Attune remembers about a user, with where it came from and when it held.

    ``kind`` is ``episodic`` (a turn as said), ``summary`` (a session), or a semantic kind:
    ``fact``, ``preference``, ``instruction``. A semantic memory that a newer one contradicts
    gets ``invalid_at`` and ``superseded_by`` and stays as history.
    """

    __tablename__ = "memories"
    __table_args__ = (
        sa.Index("ix_memories_user_kind", "user_id", "kind"),
        sa.Index("ix_memories_user_hash", "user_id", "content_hash"),
        sa.Index("ix_memories_user_slot", "user_id", "slot"),
        # Recency ranking and listing: a user's memories newest first (migration 0004).
        sa.Index("ix_memories_user_created", "user_id", "created_at"),
    )

    id: str = Field(default_factory=lambda: new_id("mem"), primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="users.id", max_length=40)
    kind: str = Field(max_length=16)
    text: str = Field(sa_type=sa.Text)
    speaker: str | None = Field(default=None, max_length=16)
    """Who said it: ``user`` or ``assistant``."""
    slot: str | None = Field(default=None, max_length=200)
    """What a fact is about (``home_city``, ``pet:dog``): a newer fact in the same slot with
    a different value supersedes the older one."""
    content_hash: str = Field(max_length=64)
    """Digest of the normalized text, for merging duplicates."""
    thread_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _ts()
    valid_from: datetime = _ts()
    invalid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    superseded_by: str | None = Field(default=None, max_length=40)


class MemorySource(SQLModel, table=True):
    """Provenance: a turn a memory came from. Deleting the turn reaches the memory."""

    __tablename__ = "memory_sources"

    memory_id: str = Field(foreign_key="memories.id", primary_key=True, max_length=40)
    turn_id: str = Field(primary_key=True, max_length=40, index=True)
    external_id: str | None = Field(default=None, max_length=200)
    user_id: str = Field(foreign_key="users.id", max_length=40, index=True)
