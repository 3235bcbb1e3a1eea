"""Session summaries, written when a session ends and stored as ``summary`` memories.

With a chat model the summary is the model's; without one, or when the model fails or
answers with nothing, it is extractive and deterministic: the first sentence of each user
turn that says something (greetings and thanks skipped), deduplicated, in order, until
``max_chars``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from sqlmodel import Session, col, func, select

from memory.extraction.extractor import normalize
from memory.extraction.text import split_sentences
from memory.records.tables import Memory, Turn

log = logging.getLogger(__name__)

SUMMARY_PROMPT = "summary"
"""The summary model's system prompt: ``graph/prompts/summary/v<N>.md``, plain text with no
variables. ``memory`` does not import ``graph``: the composition root
(``wiring/services.py``) renders it and passes the text in."""
SUMMARY_PROMPT_VERSION = "v1"

_TURN_CHARS = 1000
_TRANSCRIPT_CHARS = 16000
_SMALL_TALK = frozenset(
    ["hi", "hello", "hey", "thanks", "thank you", "ok", "okay", "bye", "goodbye", "cool", "great"]
)


def ended_threads(
    session: Session, user_id: str, *, ended_before: datetime, limit: int
) -> list[str]:
    """The user's threads whose last turn is before ``ended_before`` and have no summary.

    Oldest ended first, at most ``limit``.
    """
    last = func.max(Turn.created_at)
    summarized = select(Memory.thread_id).where(
        Memory.user_id == user_id,
        Memory.kind == "summary",
        col(Memory.thread_id).is_not(None),
    )
    return list(
        session.exec(
            select(Turn.thread_id)
            .where(Turn.user_id == user_id, col(Turn.thread_id).not_in(summarized))
            .group_by(col(Turn.thread_id))
            .having(last <= ended_before)
            .order_by(last, col(Turn.thread_id))
            .limit(limit)
        ).all()
    )


def thread_turns(session: Session, user_id: str, thread_id: str) -> list[Turn]:
    """The user's turns in ``thread_id``, in order."""
    return list(
        session.exec(
            select(Turn)
            .where(Turn.user_id == user_id, Turn.thread_id == thread_id)
            .order_by(col(Turn.created_at), col(Turn.id))
        ).all()
    )


def summarize_session(
    turns: Sequence[tuple[str, str]],
    *,
    chat_model: BaseChatModel | None = None,
    prompt: str | None = None,
    max_chars: int = 600,
) -> str:
    """A short summary of a finished session.

    Args:
        turns: ``(role, text)`` pairs in order; roles ``user`` and ``assistant``.
        chat_model: Writes the summary when given; otherwise (or on its failure) the
            summary is extractive.
        prompt: The system prompt for ``chat_model`` (the rendered ``SUMMARY_PROMPT``);
            required with a chat model.
        max_chars: The most characters the summary may have.

    Returns:
        The summary; empty when the session has nothing worth keeping.

    Raises:
        ValueError: A chat model without a prompt.
    """
    if chat_model is not None and turns:
        messages = _messages(turns, _require(prompt))
        try:
            reply = chat_model.invoke(messages)
            return _clip(" ".join(reply.text.split()), max_chars) or extractive(turns, max_chars)
        except Exception as exc:  # the extractive summary always works
            log.warning("session summary model failed (%s); extractive", type(exc).__name__)
    return extractive(turns, max_chars)


async def asummarize_session(
    turns: Sequence[tuple[str, str]],
    *,
    chat_model: BaseChatModel | None = None,
    prompt: str | None = None,
    max_chars: int = 600,
) -> str:
    """Async :func:`summarize_session`."""
    if chat_model is not None and turns:
        messages = _messages(turns, _require(prompt))
        try:
            reply = await chat_model.ainvoke(messages)
            return _clip(" ".join(reply.text.split()), max_chars) or extractive(turns, max_chars)
        except Exception as exc:  # the extractive summary always works
            log.warning("session summary model failed (%s); extractive", type(exc).__name__)
    return extractive(turns, max_chars)


def extractive(turns: Sequence[tuple[str, str]], max_chars: int = 600) -> str:
    """The user's key statements: first sentences of user turns, deduplicated, in order.

    Args:
        turns: ``(role, text)`` pairs in order.
        max_chars: The most characters the result may have; a first sentence longer than
            that is clipped at a word boundary with an ellipsis.

    Returns:
        The sentences joined by spaces, each ending in punctuation.
    """
    picked: list[str] = []
    seen: set[str] = set()
    for role, text in turns:
        sentences = split_sentences(text) if role == "user" else []
        if not sentences:
            continue
        first = sentences[0] if sentences[0][-1] in ".!?…" else sentences[0] + "."
        key = normalize(first)
        if not key or key in _SMALL_TALK or key in seen:
            continue
        seen.add(key)
        if len(" ".join([*picked, first])) > max_chars:
            if not picked:
                picked.append(_clip(first, max_chars))
            break
        picked.append(first)
    return " ".join(picked)


def _require(prompt: str | None) -> str:
    if not prompt or not prompt.strip():
        raise ValueError("a summary chat model needs the summary prompt")
    return prompt


def _messages(turns: Sequence[tuple[str, str]], prompt: str) -> list[BaseMessage]:
    lines: list[str] = []
    total = 0
    for role, text in turns:
        line = f"{'User' if role == 'user' else 'Assistant'}: {' '.join(text.split())}"
        line = _clip(line, _TURN_CHARS)
        if total + len(line) > _TRANSCRIPT_CHARS:
            break
        lines.append(line)
        total += len(line) + 1
    return [SystemMessage(prompt.strip()), HumanMessage("\n".join(lines))]


def _clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` at a word boundary, with an ellipsis when cut."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return text[:max_chars]
    head = text[: max_chars - 1]
    if " " in head:
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,;:.") + "…"
