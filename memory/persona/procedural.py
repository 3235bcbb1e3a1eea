"""Procedural memory: a per-user instruction block learned from the user's feedback.

The optimizer reads the user's recent feedback (down-votes with comments, edits, and
up-votes), asks the configured chat model for a critique of the current block and then a
rewrite, scores the candidate and the current block on the same feedback examples, and
activates the candidate only if it scores better by a margin. Every version is kept, with
its scores and why it was or was not activated, and can be rolled back.

Scoring, per example: the block under test is put in the system prompt, the model
answers the example's message, and the answer is compared by embedding cosine with what
the user wanted (their edit, or the reply they up-voted) minus its similarity to what they
rejected (the reply they down-voted or edited). The mean over examples is the score. The
model and the embedder are passed in as plain callables, so this module knows neither
LangChain nor torch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from memory.records.tables import Feedback, InstructionBlock, Turn, utcnow

log = logging.getLogger(__name__)

ChatFn = Callable[[list[dict[str, str]]], str]
"""Messages (``role``/``content`` dicts) → the model's reply text."""
EmbedFn = Callable[[list[str]], list[list[float]]]
RenderFn = Callable[[str, dict[str, Any]], str]
"""(prompt name, variables) → the rendered prompt text."""

MAX_BLOCK_CHARS = 1200
MIN_EXAMPLES = 3
DEFAULT_MARGIN = 0.02


@dataclass(frozen=True)
class FeedbackExample:
    """One rated reply: what the user asked, what the model said, what the user thought."""

    feedback_id: str
    prompt: str
    reply: str
    rating: str
    edited_text: str | None = None
    comment: str | None = None

    def as_vars(self) -> dict[str, Any]:
        """Template variables for the critique and rewrite prompts."""
        return {
            "prompt": self.prompt,
            "reply": self.reply,
            "rating": self.rating,
            "edited_text": self.edited_text,
            "comment": self.comment,
        }


@dataclass
class OptimizeResult:
    """What one optimizer run did."""

    status: Literal["activated", "rejected", "skipped"]
    reason: str
    block: InstructionBlock | None = None
    examples: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def recent_examples(session: Session, *, user_id: str, limit: int = 20) -> list[FeedbackExample]:
    """The user's latest informative feedback on assistant replies, newest first.

    Informative: a down-vote (with or without a comment), an edit, or an up-vote.
    """
    asked = aliased(Turn)
    rows = session.exec(
        select(Feedback, Turn, asked)
        .join(Turn, col(Turn.id) == col(Feedback.turn_id))
        .join(asked, col(asked.id) == col(Turn.reply_to_id))
        .where(Feedback.user_id == user_id, Turn.user_id == user_id)
        .order_by(col(Feedback.created_at).desc())
        .limit(limit)
    ).all()
    return [
        FeedbackExample(
            feedback_id=fb.id,
            prompt=question.content,
            reply=reply.content,
            rating=fb.rating,
            edited_text=fb.edited_text,
            comment=fb.comment,
        )
        for fb, reply, question in rows
    ]


def active_block(session: Session, *, user_id: str) -> InstructionBlock | None:
    """The user's active block, if any."""
    return session.exec(
        select(InstructionBlock).where(
            InstructionBlock.user_id == user_id, InstructionBlock.status == "active"
        )
    ).first()


def active_text(session: Session, *, user_id: str) -> str | None:
    """The text of the user's active block, if any."""
    block = active_block(session, user_id=user_id)
    return block.text if block is not None else None


def list_blocks(session: Session, *, user_id: str) -> list[InstructionBlock]:
    """Every version of the user's block, newest first."""
    return list(
        session.exec(
            select(InstructionBlock)
            .where(InstructionBlock.user_id == user_id)
            .order_by(col(InstructionBlock.version).desc())
        )
    )


def propose(
    examples: Sequence[FeedbackExample], current: str | None, *, chat: ChatFn, render: RenderFn
) -> tuple[str, str]:
    """Critique the current block against the feedback, then rewrite it: (critique, block)."""
    shown = [e.as_vars() for e in examples]
    critique = chat(
        [
            {
                "role": "user",
                "content": render("procedural_critique", {"current": current, "examples": shown}),
            }
        ]
    ).strip()
    rewrite = chat(
        [
            {
                "role": "user",
                "content": render(
                    "procedural_rewrite",
                    {"current": current, "critique": critique, "examples": shown},
                ),
            }
        ]
    )
    return critique, _clean_block(rewrite)


def _clean_block(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    block = "\n".join(lines)
    return block[:MAX_BLOCK_CHARS].rsplit("\n", 1)[0] if len(block) > MAX_BLOCK_CHARS else block


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def evaluate(
    block: str | None,
    examples: Sequence[FeedbackExample],
    *,
    chat: ChatFn,
    embed: EmbedFn,
    system: Callable[[str | None], str],
) -> float:
    """Mean over ``examples`` of sim(answer, wanted) - sim(answer, rejected).

    ``system(block)`` renders the system prompt with ``block`` as the learned block.
    """
    if not examples:
        return 0.0
    prompt = system(block)
    answers = [
        chat([{"role": "system", "content": prompt}, {"role": "user", "content": e.prompt}])
        for e in examples
    ]
    texts: list[str] = []
    for e in examples:
        texts.append(e.edited_text or (e.reply if e.rating == "up" else ""))
        texts.append(e.reply if e.rating == "down" or e.edited_text else "")
    vectors = embed([*answers, *[t or "-" for t in texts]])
    ans, refs = vectors[: len(answers)], vectors[len(answers) :]
    total = 0.0
    for i, _ in enumerate(examples):
        wanted, rejected = texts[2 * i], texts[2 * i + 1]
        if wanted:
            total += _cosine(ans[i], refs[2 * i])
        if rejected:
            total -= _cosine(ans[i], refs[2 * i + 1])
    return total / len(examples)


def optimize(
    session: Session,
    *,
    user_id: str,
    chat: ChatFn,
    embed: EmbedFn,
    render: RenderFn,
    system: Callable[[str | None], str],
    limit: int = 20,
    min_examples: int = MIN_EXAMPLES,
    margin: float = DEFAULT_MARGIN,
) -> OptimizeResult:
    """Propose, gate and (if better) activate a new block for the user; commit nothing.

    Idempotent: when the latest block was already built from exactly these feedback
    examples, nothing is proposed again (a redelivered task changes nothing).
    """
    examples = recent_examples(session, user_id=user_id, limit=limit)
    if len(examples) < min_examples:
        return OptimizeResult(
            "skipped",
            f"{len(examples)} feedback examples, need {min_examples}",
            None,
            len(examples),
        )
    ids = sorted(e.feedback_id for e in examples)
    blocks = list_blocks(session, user_id=user_id)
    if blocks and sorted(blocks[0].feedback_ids) == ids:
        return OptimizeResult(
            "skipped", "no new feedback since the last proposal", blocks[0], len(examples)
        )
    current = active_block(session, user_id=user_id)
    current_text = current.text if current is not None else None
    critique, candidate = propose(examples, current_text, chat=chat, render=render)
    if not candidate:
        return OptimizeResult("skipped", "the model proposed an empty block", None, len(examples))
    score = evaluate(candidate, examples, chat=chat, embed=embed, system=system)
    baseline = evaluate(current_text, examples, chat=chat, embed=embed, system=system)
    better = score > baseline + margin
    reason = (
        f"scored {score:.3f} vs {baseline:.3f} for the "
        f"{'current block' if current else 'prompt without a block'} on {len(examples)} "
        f"feedback examples (margin {margin})"
    )
    block = InstructionBlock(
        user_id=user_id,
        version=(blocks[0].version + 1) if blocks else 1,
        text=candidate,
        status="active" if better else "rejected",
        parent_id=current.id if current else None,
        critique=critique[:4000],
        score=score,
        baseline_score=baseline,
        feedback_ids=ids,
        reason=("activated: " if better else "rejected: ") + reason,
        activated_at=utcnow() if better else None,
    )
    if better and current is not None:
        current.status = "retired"
        session.add(current)
        session.flush()  # one active block per user, at every moment
    session.add(block)
    session.flush()
    log.info("user %s: block v%d %s", user_id, block.version, block.reason)
    return OptimizeResult(
        "activated" if better else "rejected",
        block.reason,
        block,
        len(examples),
        {"score": score, "baseline": baseline},
    )


class NoBlockError(LookupError):
    """The user has no such block, or nothing to roll back to."""


def activate(session: Session, *, user_id: str, block_id: str, reason: str) -> InstructionBlock:
    """Make ``block_id`` the user's active block (retiring the active one)."""
    block = session.get(InstructionBlock, block_id)
    if block is None or block.user_id != user_id:
        raise NoBlockError(f"the user has no instruction block {block_id!r}")
    current = active_block(session, user_id=user_id)
    if current is not None and current.id != block.id:
        current.status = "retired"
        session.add(current)
        session.flush()
    block.status = "active"
    block.activated_at = utcnow()
    block.reason = reason[:500]
    session.add(block)
    session.flush()
    return block


def rollback(session: Session, *, user_id: str) -> InstructionBlock | None:
    """Retire the active block and restore the one it replaced; return the new active one.

    Raises:
        NoBlockError: The user has no active block.
    """
    current = active_block(session, user_id=user_id)
    if current is None:
        raise NoBlockError("the user has no active instruction block to roll back")
    current.status = "retired"
    current.reason = f"rolled back at {utcnow().isoformat()}"
    session.add(current)
    session.flush()
    if current.parent_id is None:
        return None
    return activate(
        session,
        user_id=user_id,
        block_id=current.parent_id,
        reason=f"restored by rolling back version {current.version}",
    )
