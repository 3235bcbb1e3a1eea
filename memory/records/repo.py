"""Keyword-only functions over the record tables. Callers own the session and commit."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, delete, func, select, update

from memory.records import experiments
from memory.records.keys import display_prefix, generate_key, hash_key
from memory.records.tables import (
    ApiKey,
    Feedback,
    IdempotentRequest,
    InstructionBlock,
    Memory,
    MemorySource,
    Profile,
    ProfileChange,
    ProfileVersion,
    Thread,
    Turn,
    User,
    UserGroup,
    utcnow,
)


@dataclass(frozen=True)
class Principal:
    """Who a bearer key belongs to."""

    user_id: str | None
    is_admin: bool


def create_user(session: Session, *, name: str, group_id: str | None = None) -> tuple[User, str]:
    """Create a user and a first API key; return the user and the key in plain text."""
    user = User(name=name, group_id=group_id)
    session.add(user)
    session.flush()
    key = create_api_key(session, user_id=user.id)
    return user, key


def create_api_key(session: Session, *, user_id: str | None, is_admin: bool = False) -> str:
    """Store a new key's digest and return the key (the only time it is seen in full)."""
    key = generate_key()
    session.add(
        ApiKey(
            user_id=user_id, is_admin=is_admin, key_hash=hash_key(key), prefix=display_prefix(key)
        )
    )
    session.flush()
    return key


def principal_for_key(session: Session, key: str, *, admin_key: str | None) -> Principal | None:
    """Resolve a bearer key to its principal; ``None`` for an unknown or revoked key."""
    if admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(user_id=None, is_admin=True)
    row = session.exec(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), col(ApiKey.revoked_at).is_(None))
    ).first()
    if row is None:
        return None
    if row.is_admin:
        # A stored admin key only counts while no key is configured in the settings.
        return Principal(user_id=None, is_admin=True) if admin_key is None else None
    return Principal(user_id=row.user_id, is_admin=False)


def ensure_admin_key(session: Session) -> str | None:
    """Create the stored admin key if there is none; return it in plain text if created."""
    exists = session.exec(select(ApiKey).where(col(ApiKey.is_admin).is_(True))).first()
    if exists is not None:
        return None
    return create_api_key(session, user_id=None, is_admin=True)


def get_user(session: Session, user_id: str) -> User | None:
    """The user with ``user_id``, or ``None``."""
    return session.get(User, user_id)


def count_users(session: Session) -> int:
    """How many users exist."""
    return int(session.exec(select(func.count()).select_from(User)).one())


def list_users(session: Session, *, limit: int = 100) -> Sequence[User]:
    """Users, oldest first."""
    return session.exec(select(User).order_by(col(User.created_at)).limit(limit)).all()


def delete_user(session: Session, *, user_id: str) -> list[str]:
    """Delete a user and every record derived from them; return their thread ids.

    The caller removes the returned threads' checkpointed state.
    """
    thread_ids = list(session.exec(select(Thread.id).where(Thread.user_id == user_id)).all())
    session.exec(delete(MemorySource).where(col(MemorySource.user_id) == user_id))
    session.exec(delete(Memory).where(col(Memory.user_id) == user_id))
    session.exec(delete(Feedback).where(col(Feedback.user_id) == user_id))
    session.exec(delete(IdempotentRequest).where(col(IdempotentRequest.user_id) == user_id))
    experiments.delete_for_user(session, user_id)
    session.exec(delete(Turn).where(col(Turn.user_id) == user_id))
    session.exec(delete(Thread).where(col(Thread.user_id) == user_id))
    session.exec(delete(ProfileChange).where(col(ProfileChange.user_id) == user_id))
    session.exec(delete(ProfileVersion).where(col(ProfileVersion.user_id) == user_id))
    session.exec(delete(InstructionBlock).where(col(InstructionBlock.user_id) == user_id))
    session.exec(delete(Profile).where(col(Profile.user_id) == user_id))
    session.exec(delete(ApiKey).where(col(ApiKey.user_id) == user_id))
    session.exec(delete(User).where(col(User.id) == user_id))
    return thread_ids


def get_thread(session: Session, *, user_id: str, thread_id: str) -> Thread | None:
    """The user's thread with ``thread_id``; ``None`` if absent or another user's."""
    thread = session.get(Thread, thread_id)
    return thread if thread is not None and thread.user_id == user_id else None


def find_thread_by_conversation(
    session: Session, *, user_id: str, conversation_hash: str
) -> str | None:
    """The thread whose recorded conversation ends with the digest ``conversation_hash``."""
    return session.exec(
        select(Turn.thread_id)
        .where(Turn.user_id == user_id, Turn.conversation_hash == conversation_hash)
        .order_by(col(Turn.created_at).desc())
    ).first()


def group_adapter(session: Session, *, group_id: str | None) -> str | None:
    """The adapter of ``group_id``, if the group exists and has one."""
    if group_id is None:
        return None
    group = session.get(UserGroup, group_id)
    return group.adapter_name if group is not None else None


def title_of(text: str) -> str | None:
    """A thread's title, derived from its first user message: the first line, cut short.

    Derived text: deleting that message re-derives the title (``memory.derived``).
    """
    return text.strip().splitlines()[0][:80] if text.strip() else None


def accept_message(session: Session, *, thread_id: str, user_id: str, user_turn: Turn) -> None:
    """Persist a user message as its request is accepted, creating the thread on first use.

    Idempotent; :func:`record_exchange` later adds the reply beside it.
    """
    _thread(session, thread_id=thread_id, user_id=user_id, first=user_turn)
    if session.get(Turn, user_turn.id) is None:
        session.add(user_turn)
        session.flush()


def mark_interrupted(session: Session, *, turn_ids: Sequence[str]) -> int:
    """Mark user turns whose reply never finished; how many were marked."""
    if not turn_ids:
        return 0
    result = session.exec(
        update(Turn)
        .where(col(Turn.id).in_(turn_ids), col(Turn.role) == "user", col(Turn.status).is_(None))
        .values(status="interrupted")
    )
    return int(result.rowcount or 0)


def unanswered(session: Session, *, before: datetime) -> list[str]:
    """User turns created before ``before`` with no reply and no status."""
    answered = select(Turn.reply_to_id).where(
        col(Turn.role) == "assistant", col(Turn.reply_to_id).is_not(None)
    )
    return list(
        session.exec(
            select(Turn.id).where(
                col(Turn.role) == "user",
                col(Turn.status).is_(None),
                col(Turn.external_id).is_(None),  # imported history has no replies to wait for
                col(Turn.created_at) < before,
                col(Turn.id).not_in(answered),
            )
        ).all()
    )


def _thread(session: Session, *, thread_id: str, user_id: str, first: Turn) -> None:
    now = utcnow()
    thread = session.get(Thread, thread_id)
    if thread is None:
        title = title_of(first.content)
        session.add(
            Thread(id=thread_id, user_id=user_id, title=title, created_at=now, updated_at=now)
        )
        session.flush()
    else:
        thread.updated_at = now


def record_exchange(
    session: Session, *, thread_id: str, user_id: str, user_turn: Turn, assistant_turn: Turn
) -> None:
    """Persist a user message and its reply, creating the thread on first use.

    Idempotent: turns whose ids already exist are left as they are.
    """
    _thread(session, thread_id=thread_id, user_id=user_id, first=user_turn)
    for turn in (user_turn, assistant_turn):
        if session.get(Turn, turn.id) is None:
            session.add(turn)
            session.flush()


def thread_turns(session: Session, *, user_id: str, thread_id: str) -> Sequence[Turn]:
    """The recorded turns of one of the user's threads, oldest first."""
    return session.exec(
        select(Turn)
        .where(Turn.user_id == user_id, Turn.thread_id == thread_id)
        .order_by(col(Turn.created_at), col(Turn.role).desc())
    ).all()


def get_profile(session: Session, *, user_id: str) -> Profile:
    """The user's profile (an empty, unsaved one if they have none yet)."""
    return session.get(Profile, user_id) or Profile(user_id=user_id, data={}, version=0)
