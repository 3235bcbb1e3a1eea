"""Episodic and semantic memory: writes with provenance, hybrid search, deletion.

Searching and reading live in ``memory.retrieval.search``, index writes in
``memory.retrieval.indexing`` and deferred vector indexing in ``memory.retrieval.deferred``;
this service holds the indexes and delegates to them.

One ``MemoryService`` per process. Rows live in the record store (``memories`` and
``memory_sources``); vectors in a ``VectorIndex``; terms in a ``LexicalIndex``. Writes go to
the indexes first and the rows last, so a failure leaves at worst index entries without a
row, which searches skip. Every read and write names the user, and each store filters by
that user itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from langchain_core.language_models import BaseChatModel
from sqlalchemy.engine import Engine
from sqlmodel import col, delete, func, select

from memory.config import MemorySettings
from memory.extraction.consolidate import Existing, plan, writes
from memory.extraction.extractor import Candidate, Extractor, content_hash
from memory.extraction.summaries import ended_threads, summarize_session, thread_turns
from memory.records.tables import Memory, MemorySource, Turn, utcnow
from memory.retrieval.deferred import DeferredIndexer
from memory.retrieval.dense_health import DenseHealth, SearchResults, index_or_owe, ranked
from memory.retrieval.indexing import IndexWriter
from memory.retrieval.keys import turn_keys
from memory.retrieval.protocols import Embedder, LexicalIndex, VectorIndex
from memory.retrieval.search import Mode, load_links, load_rows, search, to_views
from memory.views import MemoryView, NewMemory, SourceRef

__all__ = [
    "KINDS",
    "SEMANTIC_KINDS",
    "MemoryService",
    "MemoryView",
    "Mode",
    "NewMemory",
    "SourceRef",
]

SEMANTIC_KINDS = ("fact", "preference", "instruction")
KINDS = ("episodic", "summary", *SEMANTIC_KINDS)


class MemoryService(IndexWriter):
    """Writes, searches and deletes a user's memories across rows, vectors and terms.

    Index writes (vectors now or deferred, re-indexing, late-write clean-up) come from
    :class:`memory.retrieval.indexing.IndexWriter`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        embedder: Embedder,
        vectors: VectorIndex,
        lexical: LexicalIndex,
        extractor: Extractor,
        settings: MemorySettings,
        clock: Callable[[], datetime] = utcnow,
        summary_prompt: str | None = None,
    ) -> None:
        """Use ``engine`` for rows and the given indexes; the caller owns them all.

        ``summary_prompt`` is the rendered ``memory.extraction.summaries.SUMMARY_PROMPT``, needed
        only when sessions are summarized with a chat model.
        """
        self.engine = engine
        self.embedder = embedder
        self.vectors = vectors
        self.lexical = lexical
        self.extractor = extractor
        self.settings = settings
        self.clock = clock
        self.summary_prompt = summary_prompt
        self._deferred = DeferredIndexer(self.index_dense)
        self.dense_health = DenseHealth(settings.vector_retry_s, repay=self.index_dense)
        """The dense index's state: searches go lexical and writes owe vectors while down."""

    # ---- writes -------------------------------------------------------------------------

    def add(
        self,
        user_id: str,
        items: Sequence[NewMemory],
        *,
        dense: bool = True,
        keys: Sequence[str] | None = None,
    ) -> list[MemoryView]:
        """Write ``items`` (embedding them in batches) and return them.

        With ``dense=False`` only the rows and the lexical index are written; the caller
        owes an :meth:`index_dense` for them (:meth:`import_turns` schedules it).
        ``keys``, one per item, are what the indexes hold instead of the text
        (``memory.retrieval.keys``); default: rebuilt from the store.
        """
        if not items:
            return []
        now = self.clock()
        rows = [
            Memory(
                user_id=user_id,
                kind=item.kind,
                text=item.text,
                speaker=item.speaker,
                slot=item.slot,
                content_hash=content_hash(item.text),
                thread_id=item.thread_id,
                created_at=item.created_at or now,
                valid_from=item.valid_from or item.created_at or now,
            )
            for item in items
        ]
        index_or_owe(
            self.dense_health,
            lambda with_dense: self._index(user_id, rows, dense=with_dense, keys=keys),
            user_id,
            [r.id for r in rows],
            dense=dense,
        )
        links = [
            MemorySource(
                memory_id=row.id, turn_id=s.turn_id, external_id=s.external_id, user_id=user_id
            )
            for row, item in zip(rows, items, strict=True)
            for s in {s.turn_id: s for s in item.sources}.values()
        ]
        with self._session() as session:
            session.add_all(rows)
            session.flush()
            session.add_all(links)
            session.commit()
        return to_views(rows, links)

    def index_turns(self, turns: Sequence[Turn], *, dense: bool = True) -> list[MemoryView]:
        """Index turns as episodic memories, so they are searchable before the next turn.

        Each is indexed by its key (``memory.retrieval.keys.turn_keys``: speaker, date and
        the turns next to it among ``turns``), shown by its text. ``dense=False`` writes
        rows and terms only (see :meth:`add`).
        """
        by_user: dict[str, list[NewMemory]] = {}
        keys_of: dict[str, list[str]] = {}
        for t, key in zip(
            turns, turn_keys(turns, context_chars=self.settings.index_context_chars), strict=True
        ):
            if not t.content.strip():
                continue
            keys_of.setdefault(t.user_id, []).append(key)
            by_user.setdefault(t.user_id, []).append(
                NewMemory(
                    kind="episodic",
                    text=t.content,
                    sources=[SourceRef(t.id, t.external_id)],
                    speaker=t.role,
                    thread_id=t.thread_id,
                    created_at=t.created_at,
                )
            )
        return [
            view
            for user_id, items in by_user.items()
            for view in self.add(user_id, items, dense=dense, keys=keys_of[user_id])
        ]

    def import_turns(self, turns: Sequence[Turn]) -> list[MemoryView]:
        """Index imported turns the way ``settings.import_dense`` says.

        ``inline``: as :meth:`index_turns`. ``deferred``: rows and terms now (the turns
        are found by lexical and hybrid search when this returns), vectors by a
        background thread of this service; :meth:`dense_backlog` counts what is left and
        :meth:`wait_dense` waits for it.
        """
        if self.settings.import_dense == "inline":
            return self.index_turns(turns)
        views = self.index_turns(turns, dense=False)
        by_turn = {
            t.id: (t, key)
            for t, key in zip(
                turns,
                turn_keys(turns, context_chars=self.settings.index_context_chars),
                strict=True,
            )
        }
        by_user: dict[str, dict[str, str]] = {}
        for view in views:  # an episodic memory's one source is its turn
            turn, key = by_turn[str(view.sources[0]["turn_id"])]
            by_user.setdefault(turn.user_id, {})[view.id] = key
        self._deferred.submit(by_user)
        return views

    def summarize_ended_sessions(
        self,
        user_id: str,
        *,
        idle_after: timedelta,
        chat_model: BaseChatModel | None = None,
        limit: int = 100,
    ) -> list[MemoryView]:
        """Write a ``summary`` memory for each of the user's ended sessions without one.

        A session (thread) has ended when its last turn is older than ``idle_after``. Its
        summary's sources are all its turns, its ``created_at`` the last turn's time.
        Idempotent: a thread that has a summary is skipped, so a re-run (a redelivered
        task) writes nothing new; a session with nothing worth keeping gets none.

        Args:
            user_id: Whose sessions.
            idle_after: How long after its last turn a session counts as ended.
            chat_model: Writes the summaries with ``summary_prompt``; ``None``: the
                deterministic extractive summary (``memory.extraction.summaries.extractive``).
            limit: The most sessions summarized in one call (oldest ended first).

        Returns:
            The summaries written.
        """
        with self._session() as session:
            ended = ended_threads(
                session, user_id, ended_before=self.clock() - idle_after, limit=limit
            )
        written: list[MemoryView] = []
        for thread_id in ended:
            with self._session() as session:
                turns = thread_turns(session, user_id, thread_id)
            text = summarize_session(
                [(t.role, t.content) for t in turns],
                chat_model=chat_model,
                prompt=self.summary_prompt,
            )
            if not text or not turns:
                continue
            item = NewMemory(
                kind="summary",
                text=text,
                sources=[SourceRef(t.id, t.external_id) for t in turns],
                thread_id=thread_id,
                created_at=turns[-1].created_at,
            )
            written.extend(self.add(user_id, [item]))
        return written

    def distill(self, turn: Turn) -> list[MemoryView]:
        """Extract semantic memories from a turn and fold them into what is known.

        A user turn's memories are about the user; a turn of a named other speaker (an
        imported conversation's second person, "Melanie") yields memories about that
        person; the assistant's own words yield none. Each memory is dated at its turn.

        Duplicates merge (the new turn becomes another source); a fact that contradicts a
        current one in the same slot supersedes it (``invalid_at`` set, kept as history).
        """
        if not distillable(turn):
            return []
        subject = named(turn.speaker) if turn.role != "user" else None
        candidates = self.extractor.extract(
            turn.content, speaker=turn.role, at=turn.created_at, subject=subject
        )
        source = SourceRef(turn.id, turn.external_id)
        return self.apply(turn.user_id, candidates, source, at=turn.created_at)

    def distill_many(self, turns: Sequence[Turn]) -> int:
        """Distill each :func:`distillable` turn in order; return the memories written."""
        return sum(len(self.distill(t)) for t in turns)

    def apply(
        self,
        user_id: str,
        candidates: Sequence[Candidate],
        source: SourceRef,
        *,
        at: datetime | None = None,
    ) -> list[MemoryView]:
        """Apply extracted ``candidates`` from ``source``; return the memories written.

        ``at`` is when the source was said, the new memories' time (default: now).
        """
        if not candidates:
            return []
        with self._session() as session:
            current = session.exec(
                select(Memory).where(
                    Memory.user_id == user_id,
                    col(Memory.kind).in_(SEMANTIC_KINDS),
                    col(Memory.invalid_at).is_(None),
                )
            ).all()
        existing = [Existing(m.id, m.kind, m.text, m.slot, m.content_hash) for m in current]
        todo = writes(plan(existing, candidates), source, at=at)
        written = self.add(user_id, todo.new)
        with self._session() as session:
            for memory_id in todo.merges:
                if session.get(MemorySource, (memory_id, source.turn_id)) is None:
                    session.add(
                        MemorySource(
                            memory_id=memory_id,
                            turn_id=source.turn_id,
                            external_id=source.external_id,
                            user_id=user_id,
                        )
                    )
            for index, old_id in todo.retire:
                old, successor = session.get(Memory, old_id), written[index]
                if old is not None and old.user_id == user_id and old.invalid_at is None:
                    old.invalid_at = max(successor.valid_from, old.valid_from)
                    old.superseded_by = successor.id
            session.commit()
        return written

    def update(
        self, user_id: str, memory_id: str, *, text: str | None = None, kind: str | None = None
    ) -> MemoryView | None:
        """Edit a memory's text or kind (re-indexed); ``None`` if the user has no such memory."""
        with self._session() as session:
            row = session.get(Memory, memory_id)
            if row is None or row.user_id != user_id:
                return None
            if text is not None:
                row.text, row.content_hash = text, content_hash(text)
            if kind is not None:
                row.kind = kind
            index_or_owe(
                self.dense_health,
                lambda with_dense: self._index(user_id, [row], dense=with_dense),
                user_id,
                [row.id],
            )
            session.add(row)
            session.commit()
        return self.get(user_id, memory_id)

    def delete(self, user_id: str, memory_ids: Sequence[str]) -> int:
        """Delete memories from rows, vectors and terms; return how many existed."""
        with self._session() as session:
            owned = list(
                session.exec(
                    select(Memory.id).where(
                        Memory.user_id == user_id, col(Memory.id).in_(memory_ids)
                    )
                ).all()
            )
            if not owned:
                return 0
            self.vectors.delete(user_id, owned)
            self.lexical.delete(user_id, owned)
            session.exec(delete(MemorySource).where(col(MemorySource.memory_id).in_(owned)))
            session.exec(delete(Memory).where(col(Memory.id).in_(owned)))
            session.commit()
        # Again once the rows are gone: an indexer that read them before may have written
        # since (it re-checks after writing, so one of the two removes the vectors last).
        self.vectors.delete(user_id, owned)
        self.lexical.delete(user_id, owned)
        return len(owned)

    def delete_for_turns(self, user_id: str, turn_ids: Sequence[str]) -> int:
        """Delete every memory derived from any of ``turn_ids``; return how many."""
        with self._session() as session:
            ids = list(
                session.exec(
                    select(MemorySource.memory_id).where(
                        MemorySource.user_id == user_id, col(MemorySource.turn_id).in_(turn_ids)
                    )
                ).all()
            )
        return self.delete(user_id, sorted(set(ids)))

    def delete_user(self, user_id: str) -> None:
        """Remove the user's vectors and terms (rows go with the user's records)."""
        self.vectors.delete_user(user_id)
        self.lexical.delete_user(user_id)

    # ---- reads --------------------------------------------------------------------------

    def search(
        self,
        user_id: str,
        query: str,
        *,
        k: int = 10,
        kinds: Sequence[str] | None = None,
        mode: Mode = "hybrid",
        include_invalid: bool = False,
        exclude_thread_id: str | None = None,
    ) -> list[MemoryView]:
        """The user's memories most relevant to ``query``, best first.

        See :func:`memory.retrieval.search.search` for the modes (``hybrid`` fuses dense, lexical
        and recency rankings, then applies the priors) and the arguments. While a deferred
        import of the user's is still writing vectors in this process, the search waits
        for it up to ``settings.vector_wait_s``, then ranks without the dense index. While
        the dense index does not answer (a Chroma server down), a hybrid search ranks
        without it too, and says so: the list is a ``SearchResults`` whose ``degraded``
        names the missing retriever (``memory.retrieval.dense_health.degraded`` reads it);
        a ``dense`` one raises.
        """
        ready = mode == "lexical" or self._deferred.wait_user(user_id, self.settings.vector_wait_s)

        def run(dense: bool) -> list[MemoryView]:
            return search(
                self.engine,
                embedder=self.embedder,
                vectors=self.vectors,
                lexical=self.lexical,
                settings=self.settings,
                user_id=user_id,
                query=query,
                k=k,
                kinds=kinds,
                mode=mode,
                include_invalid=include_invalid,
                exclude_thread_id=exclude_thread_id,
                dense_ready=ready and dense,
            )

        if mode == "dense":
            return SearchResults(run(True))
        return ranked(self.dense_health, run, wants_dense=mode == "hybrid" and ready)

    def get(self, user_id: str, memory_id: str) -> MemoryView | None:
        """One of the user's memories, or ``None``."""
        row = load_rows(self.engine, user_id, [memory_id]).get(memory_id)
        return to_views([row], load_links(self.engine, [row.id]))[0] if row is not None else None

    def list(
        self,
        user_id: str,
        *,
        kind: str | None = None,
        include_invalid: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[MemoryView], int]:
        """A page of the user's memories, newest first, and the total count."""
        query = select(Memory).where(Memory.user_id == user_id)
        count = select(func.count()).select_from(Memory).where(Memory.user_id == user_id)
        if kind is not None:
            query = query.where(Memory.kind == kind)
            count = count.where(Memory.kind == kind)
        if not include_invalid:
            query = query.where(col(Memory.invalid_at).is_(None))
            count = count.where(col(Memory.invalid_at).is_(None))
        with self._session() as session:
            rows = session.exec(
                query.order_by(col(Memory.created_at).desc(), col(Memory.id))
                .offset(offset)
                .limit(limit)
            ).all()
            total = int(session.exec(count).one())
        return to_views(rows, load_links(self.engine, [r.id for r in rows])), total


def named(speaker: str | None) -> str | None:
    """``speaker`` when it names a person rather than a role."""
    if speaker is None or speaker.strip().lower() in ("", "user", "assistant", "system"):
        return None
    return speaker.strip()


def distillable(turn: Turn) -> bool:
    """Whether distilling ``turn`` can teach anything.

    The user's own words can, and a named other speaker's in an imported conversation;
    the assistant's never.
    """
    return turn.role == "user" or named(turn.speaker) is not None
