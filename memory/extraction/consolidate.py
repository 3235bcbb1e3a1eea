"""What to do with newly extracted memories, given the ones a user already has.

:func:`plan` is a pure decision and :func:`writes` turns it into store writes, which the
caller applies:

* :class:`Add`: a new memory, with the turn as its source.
* :class:`Merge`: the candidate says what a stored memory says (same :func:`content_hash`):
  keep that memory and add the turn as one more source.
* :class:`Supersede`: the candidate contradicts stored memories (same slot, different
  text): set ``invalid_at`` and ``superseded_by`` on each of them (they stay as history)
  and add the candidate. Only memories in that slot are retired.

Slots contradict when they are equal, except that ``likes:<x>`` and ``dislikes:<x>`` are one
slot ("I love sushi" then "I hate sushi"). Instructions only contradict instructions, and
facts or preferences only facts or preferences, so an instruction never retires a fact.

Within one batch, when several candidates share a slot the last one wins and the earlier
ones are dropped, not added and then retired: a batch is one turn (call :func:`plan` per turn,
in order, applying each plan before the next), so every dropped candidate came from the same
turn as the winner and no source is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from memory.extraction.extractor import Candidate, content_hash
from memory.views import NewMemory, SourceRef


@dataclass(frozen=True)
class Existing:
    """A user's currently valid semantic memory, as :func:`plan` needs to see it."""

    id: str
    kind: str
    text: str
    slot: str | None
    content_hash: str


@dataclass(frozen=True)
class Add:
    """Store ``candidate`` as a new memory."""

    candidate: Candidate


@dataclass(frozen=True)
class Merge:
    """``candidate`` duplicates memory ``memory_id``: add the new source to it."""

    memory_id: str
    candidate: Candidate


@dataclass(frozen=True)
class Supersede:
    """Retire the memories ``old_ids`` (same slot, other content) and add ``candidate``."""

    old_ids: tuple[str, ...]
    candidate: Candidate

    @property
    def old_id(self) -> str:
        """The first retired memory (there is one unless the store held a slot twice)."""
        return self.old_ids[0]


Action = Add | Merge | Supersede


def contradiction_key(kind: str, slot: str | None) -> str | None:
    """The key under which memories contradict each other, or ``None`` if they cannot.

    Args:
        kind: ``fact``, ``preference`` or ``instruction``.
        slot: The memory's slot.

    Returns:
        ``"instruction|<slot>"`` or ``"memory|<slot>"``, with ``likes:``/``dislikes:``
        folded into ``pref:``; ``None`` when the slot is empty.
    """
    if not slot or not slot.strip():
        return None
    slot = slot.strip().lower()
    for prefix in ("likes:", "dislikes:"):
        if slot.startswith(prefix):
            slot = "pref:" + slot[len(prefix) :]
    return ("instruction|" if kind == "instruction" else "memory|") + slot


def plan(existing: Sequence[Existing], candidates: Sequence[Candidate]) -> list[Action]:
    """Decide, for each candidate of one turn, whether to add, merge or supersede.

    Args:
        existing: The user's currently valid semantic memories (``invalid_at`` unset).
        candidates: What one turn's extraction proposed, in the order said.

    Returns:
        At most one action per distinct candidate, in the candidates' order: ``Merge``
        when a memory with the same content hash exists (whatever its slot), else
        ``Supersede`` when valid memories share its contradiction key, else ``Add``.
        Repeated texts in the batch collapse into the first; for a slot named several
        times only the last candidate is kept.
    """
    by_hash = {memory.content_hash: memory for memory in existing}
    by_key: dict[str, list[Existing]] = {}
    for memory in existing:
        key = contradiction_key(memory.kind, memory.slot)
        if key is not None:
            by_key.setdefault(key, []).append(memory)

    actions: list[Action] = []
    seen: set[str] = set()
    for candidate in _last_per_slot(candidates):
        digest = content_hash(candidate.text)
        if digest in seen:
            continue
        seen.add(digest)
        if digest in by_hash:
            actions.append(Merge(by_hash[digest].id, candidate))
            continue
        key = contradiction_key(candidate.kind, candidate.slot)
        olds = by_key.get(key, []) if key is not None else []
        if olds:
            actions.append(Supersede(tuple(memory.id for memory in olds), candidate))
        else:
            actions.append(Add(candidate))
    return actions


@dataclass(frozen=True)
class Writes:
    """A plan as store writes for one source turn.

    Attributes:
        new: Memories to add (for ``Add`` and ``Supersede``), each with the source.
        retire: ``(index in new, id of the memory it replaces)`` for each superseded one.
        merges: Ids of stored memories that gain the source (``Merge``).
    """

    new: list[NewMemory]
    retire: list[tuple[int, str]]
    merges: list[str]


def writes(actions: Sequence[Action], source: SourceRef, *, at: datetime | None = None) -> Writes:
    """The store writes that carry out ``actions`` (from :func:`plan`) for ``source``.

    ``at`` is when the source was said: the new memories' time (``None``: when written).
    """
    out = Writes(new=[], retire=[], merges=[])
    for action in actions:
        if isinstance(action, Merge):
            out.merges.append(action.memory_id)
            continue
        cand = action.candidate
        out.new.append(
            NewMemory(
                kind=cand.kind,
                text=cand.text,
                sources=[source],
                speaker=cand.speaker,
                slot=cand.slot,
                created_at=at,
                valid_from=cand.valid_from,
            )
        )
        if isinstance(action, Supersede):
            out.retire.extend((len(out.new) - 1, old_id) for old_id in action.old_ids)
    return out


def _last_per_slot(candidates: Sequence[Candidate]) -> list[Candidate]:
    last: dict[str, int] = {}
    for index, candidate in enumerate(candidates):
        key = contradiction_key(candidate.kind, candidate.slot)
        if key is not None:
            last[key] = index
    return [
        candidate
        for index, candidate in enumerate(candidates)
        if (key := contradiction_key(candidate.kind, candidate.slot)) is None or last[key] == index
    ]
