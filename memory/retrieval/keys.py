"""What an episodic memory is indexed by: its words, who said them, when, and around what.

A memory's text is what the API shows; its *key* is what the dense and lexical indexes
hold for it, and may say more. A person searches by who and when ("What did Caroline
research?", "When did Melanie paint a sunrise?"), and a short reply ("Yes, twice!") means
something only next to the turn it answers. So an episodic memory's key is

    ``<speaker> (<date>): <text> | <previous turn> | <next turn>``

with the neighbours (same thread, cut to ``CONTEXT_CHARS``) taken from the batch the turn
was indexed with: an import's whole session, or a live turn's exchange. Other kinds
(facts, summaries) are keyed by their text.

Dense search also keeps a vector of the text alone and takes the better of the two
(``memory.retrieval.search.dense_scores``): the key helps a question that names who or
needs the context, the text one about what was said ("What's my dog called?").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.records.tables import Memory, MemorySource, Turn

CONTEXT_CHARS = 150
"""Characters of each neighbouring turn kept in a key."""


def speaker_name(turn: Turn) -> str:
    """Who said ``turn``: the speaker's name an import gave, else the role."""
    return (turn.speaker or "").strip() or turn.role


def day(when: datetime) -> str:
    """``8 May 2023``: a date as people write it in questions."""
    return f"{when.day} {when:%B %Y}"


def episodic_key(
    turn: Turn,
    before: Turn | None = None,
    after: Turn | None = None,
    *,
    context_chars: int = CONTEXT_CHARS,
) -> str:
    """The key of ``turn``'s episodic memory, with ``context_chars`` of each neighbour."""
    key = f"{speaker_name(turn)} ({day(turn.created_at)}): {turn.content}"
    for other in (before, after):
        if context_chars and other is not None and other.content.strip():
            key += f" | {other.content[:context_chars]}"
    return key


def turn_keys(turns: Sequence[Turn], *, context_chars: int = CONTEXT_CHARS) -> list[str]:
    """Each turn's key, its neighbours being the turns next to it in its thread in ``turns``.

    ``turns`` is in conversation order (as imported or recorded); turns of several
    threads may be interleaved.
    """
    by_thread: dict[str, list[int]] = {}
    for i, t in enumerate(turns):
        by_thread.setdefault(t.thread_id, []).append(i)
    keys = [""] * len(turns)
    for positions in by_thread.values():
        for j, i in enumerate(positions):
            before = turns[positions[j - 1]] if j > 0 else None
            after = turns[positions[j + 1]] if j + 1 < len(positions) else None
            keys[i] = episodic_key(turns[i], before, after, context_chars=context_chars)
    return keys


def stored_keys(engine: Engine, rows: Sequence[Memory]) -> dict[str, str]:
    """Keys for ``rows`` rebuilt from the record store, by memory id.

    For re-indexing outside an import or a recorded exchange (a repair, an edit): an
    episodic memory gets its source turn's speaker and date, without neighbours (the
    store does not keep the order of turns that share a timestamp); others their text.
    """
    keys = {r.id: r.text for r in rows}
    episodic = [r.id for r in rows if r.kind == "episodic"]
    if not episodic:
        return keys
    with Session(engine) as session:
        pairs = session.exec(
            select(MemorySource.memory_id, Turn)
            .join(Turn, col(Turn.id) == col(MemorySource.turn_id))
            .where(col(MemorySource.memory_id).in_(episodic))
        ).all()
    texts = {r.id: r.text for r in rows}
    for memory_id, turn in pairs:
        # The memory's own text (it may have been edited), said by the turn's speaker.
        keys[memory_id] = f"{speaker_name(turn)} ({day(turn.created_at)}): {texts[memory_id]}"
    return keys


def speakers(engine: Engine, memory_ids: Sequence[str]) -> dict[str, str]:
    """The speaker's name (or role) of each episodic memory among ``memory_ids``."""
    if not memory_ids:
        return {}
    with Session(engine) as session:
        pairs = session.exec(
            select(MemorySource.memory_id, Turn.speaker, Turn.role)
            .join(Turn, col(Turn.id) == col(MemorySource.turn_id))
            .where(col(MemorySource.memory_id).in_(memory_ids))
        ).all()
    return {m: (s or "").strip() or r for m, s, r in pairs}
