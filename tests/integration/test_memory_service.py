"""MemoryService on real SQLite, Chroma, FTS5 and MiniLM: deferred import, summaries, search."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from graph.prompts import PromptLibrary
from memory.extraction.summaries import SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION
from memory.history import ImportSession, ImportTurn, import_history
from memory.records import db, repo
from memory.records.tables import Memory, MemorySource, Turn
from memory.service import MemoryService, NewMemory
from tests.conftest import shared_embedder
from tests.fakes import ReplyModel
from wiring.services import build_memory
from wiring.settings import Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def memory(settings: Settings) -> Iterator[MemoryService]:
    engine = db.open_engine(settings.db)
    try:
        service = build_memory(settings, engine, shared_embedder())
        service.clock = lambda: NOW
        yield service
        service.wait_dense()
    finally:
        engine.dispose()


def _user(memory: MemoryService) -> str:
    with Session(memory.engine) as session:
        user, _ = repo.create_user(session, name="ana")
        user_id = user.id
        session.commit()
    return user_id


def _session(sid: str, started: datetime, *lines: tuple[str, str]) -> ImportSession:
    turns = [ImportTurn(f"{sid}-{i}", role, text) for i, (role, text) in enumerate(lines)]
    return ImportSession(sid, started, turns)


def test_deferred_import_is_found_lexically_at_once_and_densely_after(
    memory: MemoryService,
) -> None:
    assert memory.settings.import_dense == "deferred"
    uid = _user(memory)
    sessions = [
        _session("s1", NOW - timedelta(days=3), ("user", "My tortoise Archibald is 80 years old.")),
        _session("s2", NOW - timedelta(days=2), ("user", "Kayaking on the fjord this weekend.")),
    ]
    result = import_history(memory.engine, user_id=uid, sessions=sessions)
    views = memory.import_turns(result.new_turns)
    assert len(views) == 2
    # Rows and terms are written before import_turns returns.
    lexical = memory.search(uid, "Archibald", k=3, mode="lexical")
    assert [v.sources[0]["external_id"] for v in lexical] == ["s1-0"]
    assert memory.wait_dense(timeout=120)
    assert memory.dense_backlog(uid) == 0 and memory.vectors.count(uid) == 2
    dense = memory.search(uid, "how old is my pet reptile", k=1, mode="dense")
    assert dense[0].sources[0]["external_id"] == "s1-0"


def test_search_right_after_a_deferred_import_waits_for_that_users_vectors(
    memory: MemoryService,
) -> None:
    uid = _user(memory)
    lines = [("user", f"Note {i}: the heron nests by the mill pond.") for i in range(40)]
    result = import_history(
        memory.engine, user_id=uid, sessions=[_session("s1", NOW - timedelta(days=1), *lines)]
    )
    memory.import_turns(result.new_turns)
    hits = memory.search(uid, "where do the birds nest", k=5)  # no wait_dense() first
    assert memory.dense_backlog(uid) == 0
    assert all("dense" in (h.ranks or {}) for h in hits)


def test_past_the_wait_a_search_ranks_without_the_half_written_dense_index(
    memory: MemoryService,
) -> None:
    memory.settings = memory.settings.model_copy(update={"vector_wait_s": 0.0})
    uid = _user(memory)
    memory.add(uid, [NewMemory(kind="fact", text="The user keeps bees.")])
    memory._deferred._users[uid] = {Future()}  # as if a deferred job were still running
    try:
        hits = memory.search(uid, "bees", k=3)
    finally:
        memory._deferred._users.clear()
    assert [h.ranks for h in hits] == [{"lexical": 1}]


def _exchange(memory: MemoryService, a: str, b: str, *texts: str) -> tuple[str, list[Turn]]:
    """A new user with one imported session: ``texts`` said in turn by ``a`` and ``b``,
    all at ``NOW`` (as a history import dates a session's turns); its turns."""
    uid = _user(memory)
    turns = [
        ImportTurn(f"d{i + 1}", ("user", "assistant")[i % 2], text, (a, b)[i % 2], NOW)
        for i, text in enumerate(texts)
    ]
    result = import_history(memory.engine, user_id=uid, sessions=[ImportSession("s", NOW, turns)])
    memory.import_turns(result.new_turns)
    return uid, result.new_turns


def test_turns_are_indexed_by_speaker_date_and_neighbours_but_shown_as_said(
    memory: MemoryService,
) -> None:
    uid, _ = _exchange(
        memory,
        "Caroline",
        "Melanie",
        "Have you been anywhere lately?",
        "Yes, twice!",
        "Wow, Melanie, I went to the lighthouse.",
    )
    # "twice" is found by its speaker's name and the question it answers.
    hits = memory.search(uid, "Melanie anywhere lately", k=3, mode="lexical")
    assert hits[0].sources[0]["external_id"] == "d2" and hits[0].text == "Yes, twice!"
    # A query naming one speaker favours that speaker's own turns over turns naming them.
    hybrid = memory.search(uid, "Where did Melanie go?", k=3)
    assert hybrid[0].sources[0]["external_id"] == "d2"


def test_turns_sharing_a_timestamp_keep_their_order_and_a_match_brings_its_neighbour(
    memory: MemoryService,
) -> None:
    uid, turns = _exchange(
        memory,
        "Ana",
        "Ben",
        "Did you ever finish the quilt for your niece?",
        "Yes, last Sunday, finally!",
        "Lovely. The weather was awful here.",
    )
    stamps = [t.created_at for t in turns]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3 and stamps[0] == NOW
    hits = memory.search(uid, "quilt niece", k=3)
    found = {h.sources[0]["external_id"]: h.ranks for h in hits}
    assert "d2" in found and "d1" in found


def test_inline_import_writes_vectors_before_returning(memory: MemoryService) -> None:
    memory.settings = memory.settings.model_copy(update={"import_dense": "inline"})
    uid = _user(memory)
    session = _session("s1", NOW - timedelta(days=1), ("user", "I play the bassoon."))
    result = import_history(memory.engine, user_id=uid, sessions=[session])
    memory.import_turns(result.new_turns)
    assert memory.vectors.count(uid) == 1 and memory.dense_backlog(uid) == 0


def test_dense_backlog_counts_memories_without_vectors(memory: MemoryService) -> None:
    uid = _user(memory)
    memory.add(uid, [NewMemory(kind="fact", text="The user likes figs.")], dense=False)
    assert memory.dense_backlog(uid) == 1
    assert memory.index_dense(uid) == 1
    assert memory.dense_backlog(uid) == 0
    assert memory.index_dense(uid) == 1 and memory.vectors.count(uid) == 1  # idempotent


def test_repair_writes_vectors_a_crash_left_behind_but_not_those_in_flight(
    memory: MemoryService,
) -> None:
    uid = _user(memory)
    memory.add(uid, [NewMemory(kind="fact", text="The user keeps bees.")], dense=False)
    memory._deferred._users[uid] = {Future()}  # as if this process's thread were writing them
    assert memory.repair_dense(uid) == 0 and memory.dense_backlog(uid) == 1
    memory._deferred._users.clear()  # the thread died with its process
    assert memory.repair_dense(uid) == 1 and memory.dense_backlog(uid) == 0
    assert memory.repair_dense(uid) == 0  # nothing left to do


def test_ended_sessions_get_one_summary_with_every_turn_as_source(memory: MemoryService) -> None:
    uid = _user(memory)
    old = _session(
        "trip",
        NOW - timedelta(days=2),
        ("user", "Hi"),
        ("user", "I'm planning a trip to Japan in April."),
        ("assistant", "Pack layers."),
    )
    small_talk = _session("hello", NOW - timedelta(days=2), ("user", "Thanks!"))
    recent = _session("live", NOW - timedelta(minutes=5), ("user", "I adopted a beagle."))
    result = import_history(memory.engine, user_id=uid, sessions=[old, small_talk, recent])
    written = memory.summarize_ended_sessions(uid, idle_after=timedelta(hours=1))
    assert [w.kind for w in written] == ["summary"]
    summary = written[0]
    assert summary.text == "I'm planning a trip to Japan in April."
    assert summary.thread_id == result.thread_ids["trip"]
    assert sorted(s["external_id"] or "" for s in summary.sources) == ["trip-0", "trip-1", "trip-2"]
    assert summary.created_at == old.started_at + timedelta(seconds=2)  # the last turn's time
    # Idempotent: the summarized thread is skipped, the small talk still has nothing to keep.
    assert memory.summarize_ended_sessions(uid, idle_after=timedelta(hours=1)) == []
    with Session(memory.engine) as session:
        rows = session.exec(select(Memory).where(Memory.kind == "summary")).all()
        links = session.exec(select(MemorySource).where(MemorySource.memory_id == summary.id)).all()
    assert len(rows) == 1 and len(links) == 3
    found = memory.search(uid, "Japan trip", k=5, kinds=["summary"], mode="lexical")
    assert [v.id for v in found] == [summary.id]


def test_a_summary_model_gets_the_prompt_file(memory: MemoryService) -> None:
    uid = _user(memory)
    sid = _session("s", NOW - timedelta(days=1), ("user", "I'm learning to sail."))
    import_history(memory.engine, user_id=uid, sessions=[sid])
    model = ReplyModel(reply="The user is learning to sail.")
    written = memory.summarize_ended_sessions(uid, idle_after=timedelta(hours=1), chat_model=model)
    assert [w.text for w in written] == ["The user is learning to sail."]
    prompt = PromptLibrary().render(SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION, {})
    assert model.calls[0][0].text == prompt


def test_search_returns_a_repeated_text_once_and_a_first_person_query_favours_the_user(
    memory: MemoryService,
) -> None:
    uid = _user(memory)
    memory.add(
        uid,
        [
            NewMemory(kind="episodic", text="Any tips for my garden?", speaker="user"),
            NewMemory(kind="episodic", text="Any tips for my garden?", speaker="user"),
            NewMemory(kind="episodic", text="Your garden sounds lovely.", speaker="assistant"),
            NewMemory(kind="episodic", text="My garden has six apple trees.", speaker="user"),
        ],
    )
    for mode in ("hybrid", "dense", "lexical"):
        texts = [v.text for v in memory.search(uid, "garden", k=4, mode=mode)]
        assert sorted(texts) == sorted(set(texts)) and len(texts) == 3, mode
    hybrid = memory.search(uid, "tell me about my garden", k=3)
    # The user's statement first; the reranker puts a bare question (which states
    # nothing) below the assistant's statement.
    assert [h.text for h in hybrid] == [
        "My garden has six apple trees.",
        "Your garden sounds lovely.",
        "Any tips for my garden?",
    ]
    memory.settings = memory.settings.model_copy(update={"rerank": False})
    fused = memory.search(uid, "tell me about my garden", k=3)
    assert [h.speaker for h in fused] == ["user", "user", "assistant"]  # the speaker prior


def test_distillation_learns_about_both_named_speakers_dated_at_their_turns(
    memory: MemoryService,
) -> None:
    """The served wiring (rules + disclosure classifier on MiniLM) on an imported chat."""
    uid = _user(memory)
    said = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    turns = [
        ImportTurn("D1:1", "user", "Meat hasn't been on my plate since 2015.", "Caroline"),
        ImportTurn("D1:2", "assistant", "Night driving scares me, so I avoid it.", "Melanie"),
        ImportTurn("D1:3", "assistant", "Happy to help with that.", None),
    ]
    result = import_history(memory.engine, user_id=uid, sessions=[ImportSession("s1", said, turns)])
    assert memory.distill_many(result.new_turns) == 2
    facts = {
        v.text: v
        for kind in ("fact", "preference")
        for v in memory.list(uid, kind=kind, include_invalid=False)[0]
    }
    assert set(facts) == {
        'The user said: "Meat hasn\'t been on my plate since 2015."',
        'Melanie said: "Night driving scares me, so I avoid it."',
    }
    for view in facts.values():  # dated when it was said, not when distilled
        assert view.created_at.date() == said.date()
    melanie = facts['Melanie said: "Night driving scares me, so I avoid it."']
    assert melanie.valid_from.date() == said.date()
    quote = facts['The user said: "Meat hasn\'t been on my plate since 2015."']
    assert quote.valid_from.year == 2015  # true since the year it names
