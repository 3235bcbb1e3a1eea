"""Reading an owner's training data from the record store, and recording snapshots.

The only module of the training code that reads feedback, turns and samples; the rest
works on :class:`~adapters.datasets.SFTExample` and
:class:`~adapters.datasets.PreferencePair` values. Keyword-only functions over a SQLModel
session; the caller commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, delete, func, select

from adapters.datasets import (
    PreferencePair,
    SFTExample,
    Snapshot,
    build_snapshot,
    sample_example,
    write_snapshot,
)
from adapters.records import DatasetSnapshot, OwnerKind, Sample
from memory.pairs import PreferencePair as StoredPair
from memory.records.tables import Feedback, Turn, User


def add_samples(session: Session, *, user_id: str, texts: Sequence[str]) -> list[Sample]:
    """Store writing samples; a text the user already uploaded is not added again.

    Args:
        session: An open session.
        user_id: The user.
        texts: The samples, as given (scrubbing happens when a snapshot is built).

    Returns:
        The new samples, in input order (duplicates left out).
    """
    added: list[Sample] = []
    seen: set[str] = set()
    for text in texts:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        exists = session.exec(
            select(Sample.id).where(Sample.user_id == user_id, Sample.content_hash == digest)
        ).first()
        if exists is None:
            sample = Sample(user_id=user_id, text=text, content_hash=digest)
            session.add(sample)
            added.append(sample)
    session.flush()
    return added


def _feedback_rows(session: Session, user_ids: Sequence[str]) -> list[tuple[Feedback, Turn]]:
    """The newest feedback on each assistant turn of these users, with the turn."""
    rows = session.exec(
        select(Feedback, Turn)
        .join(Turn, col(Turn.id) == col(Feedback.turn_id))
        .where(col(Feedback.user_id).in_(list(user_ids)), Turn.role == "assistant")
        .order_by(col(Feedback.created_at))
    ).all()
    newest: dict[str, tuple[Feedback, Turn]] = {}
    for feedback, turn in rows:
        newest[turn.id] = (feedback, turn)  # later rows win
    return list(newest.values())


def _prompts(session: Session, turns: Sequence[Turn]) -> dict[str, str]:
    """The user message each assistant turn answers, by assistant turn id."""
    ids = [t.reply_to_id for t in turns if t.reply_to_id]
    if not ids:
        return {}
    asked = {t.id: t.content for t in session.exec(select(Turn).where(col(Turn.id).in_(ids)))}
    return {t.id: asked[t.reply_to_id] for t in turns if t.reply_to_id in asked}


def sft_examples(session: Session, *, user_ids: Sequence[str]) -> list[SFTExample]:
    """Replies the users accepted (rated up) or edited, and their writing samples.

    An edit's text is the reply they wanted; an up-vote keeps the reply as given.
    Feedback on a turn whose question is unknown is skipped (there is no prompt).
    """
    rows = _feedback_rows(session, user_ids)
    prompts = _prompts(session, [turn for _, turn in rows])
    examples: list[SFTExample] = []
    for feedback, turn in rows:
        prompt = prompts.get(turn.id)
        if prompt is None:
            continue
        messages = ({"role": "user", "content": prompt},)
        if feedback.edited_text:
            examples.append(SFTExample(messages, feedback.edited_text, "edited", turn.id))
        elif feedback.rating == "up":
            examples.append(SFTExample(messages, turn.content, "accepted", turn.id))
    samples = session.exec(
        select(Sample).where(col(Sample.user_id).in_(list(user_ids))).order_by(col(Sample.id))
    ).all()
    examples.extend(sample_example(s.id, s.text) for s in samples)
    return examples


def _stored_pairs(session: Session, user_ids: Sequence[str]) -> list[StoredPair]:
    """The users' rows of ``memory.pairs`` (built from feedback by the ``pairs`` job)."""
    return list(
        session.exec(
            select(StoredPair)
            .where(col(StoredPair.user_id).in_(list(user_ids)))
            .order_by(col(StoredPair.id))
        ).all()
    )


def preference_pairs(session: Session, *, user_ids: Sequence[str]) -> list[PreferencePair]:
    """The users' preference pairs.

    The pairs the ``pairs`` job stored (``memory.pairs``: edits, regenerations, up against
    down votes), with the prompt exactly as the model was sent it; their ``source_id`` is
    the prompt's user turn, so pairs on one prompt fall on the same side of the held-out
    split. Edits that table does not cover (feedback on turns recorded before prompts were
    kept) still make a pair from the plain question: the edit over the reply it replaced.
    """
    stored = _stored_pairs(session, user_ids)
    pairs = [
        PreferencePair(
            tuple({"role": m["role"], "content": m["content"]} for m in p.prompt),
            p.chosen,
            p.rejected,
            p.prompt_turn_id,
        )
        for p in stored
    ]
    # A pair's sources also name the turns of its prompt's history: only a reply to the
    # pair's own question is one the pair compares.
    covered = {(p.prompt_turn_id, t) for p in stored for t in p.sources.get("turn_ids", [])}
    rows = _feedback_rows(session, user_ids)
    prompts = _prompts(session, [turn for _, turn in rows])
    for feedback, turn in rows:
        prompt = prompts.get(turn.id)
        if (turn.reply_to_id, turn.id) in covered or prompt is None:
            continue
        if not feedback.edited_text or feedback.edited_text.strip() == turn.content.strip():
            continue
        pairs.append(
            PreferencePair(
                ({"role": "user", "content": prompt},), feedback.edited_text, turn.content, turn.id
            )
        )
    return pairs


def pair_turn_ids(session: Session, *, user_ids: Sequence[str]) -> list[str]:
    """Every turn whose text the users' stored pairs hold (prompt, replies, history, ...)."""
    return sorted(
        {t for p in _stored_pairs(session, user_ids) for t in p.sources.get("turn_ids", [])}
    )


def owner_user_ids(session: Session, *, owner_kind: OwnerKind, owner_id: str) -> list[str]:
    """The users whose data an owner's dataset pools: the user, or a group's members."""
    if owner_kind == "user":
        return [owner_id]
    return list(session.exec(select(User.id).where(User.group_id == owner_id).order_by(User.id)))


def snapshot_owner(
    session: Session,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    root: str,
    storage_options: dict[str, Any] | None = None,
) -> DatasetSnapshot:
    """Build, scrub, write and record a dataset snapshot of an owner's current data.

    Idempotent: when the owner's newest snapshot has the same content hash, it is
    returned and nothing is written.

    Args:
        session: An open session.
        owner_kind: ``user`` or ``group``.
        owner_id: The owner's id.
        root: The datasets root (fsspec URL or local path).
        storage_options: Passed to fsspec.

    Returns:
        The snapshot's record.
    """
    user_ids = owner_user_ids(session, owner_kind=owner_kind, owner_id=owner_id)
    sft = sft_examples(session, user_ids=user_ids)
    pairs = preference_pairs(session, user_ids=user_ids)
    turn_ids = [e.source_id for e in sft if e.source != "sample"] + [p.source_id for p in pairs]
    turn_ids += pair_turn_ids(session, user_ids=user_ids)
    sample_ids = [e.source_id for e in sft if e.source == "sample"]
    built: Snapshot = build_snapshot(
        owner_kind=owner_kind,
        owner_id=owner_id,
        sft=sft,
        pairs=pairs,
        source_turn_ids=turn_ids,
        source_sample_ids=sample_ids,
    )
    latest = session.exec(
        select(DatasetSnapshot)
        .where(DatasetSnapshot.owner_kind == owner_kind, DatasetSnapshot.owner_id == owner_id)
        .order_by(col(DatasetSnapshot.version).desc())
    ).first()
    if latest is not None and latest.content_hash == built.content_hash:
        return latest
    version = (latest.version if latest is not None else 0) + 1
    url = write_snapshot(built, root, version=version, storage_options=storage_options)
    m = built.manifest
    record = DatasetSnapshot(
        owner_kind=owner_kind,
        owner_id=owner_id,
        version=version,
        content_hash=built.content_hash,
        url=url,
        sft_count=m["counts"]["sft"],
        dpo_count=m["counts"]["dpo"],
        size_bytes=m["size_bytes"],
        source_turn_ids=m["source_turn_ids"],
        source_sample_ids=m["source_sample_ids"],
    )
    session.add(record)
    session.flush()
    return record


def snapshots_using(
    session: Session, *, turn_ids: Sequence[str] = (), sample_ids: Sequence[str] = ()
) -> list[DatasetSnapshot]:
    """Snapshots built from any of these turns or samples (for deletion and retirement)."""
    wanted_turns, wanted_samples = set(turn_ids), set(sample_ids)
    found = []
    for snap in session.exec(select(DatasetSnapshot)):
        if wanted_turns & set(snap.source_turn_ids) or wanted_samples & set(snap.source_sample_ids):
            found.append(snap)
    return found


def delete_user_data(session: Session, *, user_id: str) -> int:
    """Delete a user's writing samples (called when the user is deleted).

    Returns:
        How many samples were deleted.
    """
    count = session.exec(
        select(func.count()).select_from(Sample).where(Sample.user_id == user_id)
    ).one()
    session.exec(delete(Sample).where(col(Sample.user_id) == user_id))
    return int(count)
