"""Derived text that is not a memory, re-derived or removed when turns are deleted.

Called by the turn cascade (``memory.export.delete_turn``) inside its session, before the
turns and their feedback go, so what they caused can still be found:

* **thread titles**, derived from a thread's first user message (``repo.title_of``): a
  title that came from a deleted message is derived again from the thread's first
  remaining user message, or cleared;
* **learned instruction blocks** (``memory.persona.procedural``): a block's critique and
  text were written by a model shown the feedback examples it lists in ``feedback_ids``
  — each a rated reply and the question it answered. Every block built from feedback on a
  deleted turn, or on a reply to one, is deleted; if it was active, the nearest ancestor
  that survives becomes active again, and blocks that named it as parent name its parent.

Profile interests and style, derived from all of a user's messages, are recomputed by
``memory.persona.profile.forget_derived``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from memory.records.repo import title_of
from memory.records.tables import Feedback, InstructionBlock, Thread, Turn, utcnow


def retitle_threads(session: Session, *, user_id: str, turn_ids: Sequence[str]) -> int:
    """Re-derive the titles that came from the user turns ``turn_ids``; return how many.

    Call before the turns are deleted. A title is taken to come from a deleted message
    when it is that message's derived title.
    """
    doomed = session.exec(
        select(Turn).where(
            Turn.user_id == user_id, Turn.role == "user", col(Turn.id).in_(list(turn_ids))
        )
    ).all()
    changed = 0
    for thread_id in sorted({t.thread_id for t in doomed}):
        thread = session.get(Thread, thread_id)
        said = {title_of(t.content) for t in doomed if t.thread_id == thread_id}
        if thread is None or thread.title is None or thread.title not in said:
            continue
        first = session.exec(
            select(Turn.content)
            .where(
                Turn.thread_id == thread_id,
                Turn.role == "user",
                col(Turn.id).not_in(list(turn_ids)),
            )
            .order_by(col(Turn.created_at), col(Turn.id))
        ).first()
        thread.title = title_of(first) if first is not None else None
        session.add(thread)
        changed += 1
    session.flush()
    return changed


def forget_feedback_blocks(session: Session, *, user_id: str, turn_ids: Sequence[str]) -> int:
    """Delete the learned blocks built from feedback on ``turn_ids``; return how many.

    The feedback on the turns themselves and on replies to them counts (an example shows
    the reply and its question). Call before that feedback is deleted.
    """
    replies = select(Turn.id).where(
        Turn.user_id == user_id, col(Turn.reply_to_id).in_(list(turn_ids))
    )
    feedback = set(
        session.exec(
            select(Feedback.id).where(
                Feedback.user_id == user_id,
                col(Feedback.turn_id).in_(list(turn_ids)) | col(Feedback.turn_id).in_(replies),
            )
        )
    )
    if not feedback:
        return 0
    blocks = {
        b.id: b
        for b in session.exec(select(InstructionBlock).where(InstructionBlock.user_id == user_id))
    }
    doomed = {bid for bid, b in blocks.items() if feedback & set(b.feedback_ids)}
    if not doomed:
        return 0

    def survivor(block_id: str | None) -> str | None:
        """The nearest block up the parent chain that is kept."""
        while block_id is not None and block_id in doomed:
            block_id = blocks[block_id].parent_id if block_id in blocks else None
        return block_id

    was_active = any(blocks[b].status == "active" for b in doomed)
    heir = next(
        (survivor(blocks[b].parent_id) for b in doomed if blocks[b].status == "active"), None
    )
    for block in blocks.values():
        if block.id in doomed:
            session.delete(block)
        elif block.parent_id in doomed:
            block.parent_id = survivor(block.parent_id)
            session.add(block)
    session.flush()
    if was_active and heir is not None and heir in blocks:
        restored = blocks[heir]
        restored.status = "active"
        restored.activated_at = utcnow()
        restored.reason = "restored: the active block's feedback was deleted"
        session.add(restored)
        session.flush()
    return len(doomed)
