"""Consolidation of new candidates against stored memories, and session summaries."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from graph.prompts import PromptLibrary
from memory.extraction.consolidate import (
    Action,
    Add,
    Existing,
    Merge,
    Supersede,
    contradiction_key,
    plan,
)
from memory.extraction.extractor import Candidate, RuleExtractor, content_hash
from memory.extraction.summaries import (
    SUMMARY_PROMPT,
    SUMMARY_PROMPT_VERSION,
    asummarize_session,
    extractive,
    summarize_session,
)

AT = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


def cand(text: str, slot: str | None, kind: str = "fact") -> Candidate:
    return Candidate(kind, text, slot, "user", None)  # type: ignore[arg-type]


def mem(id: str, text: str, slot: str | None, kind: str = "fact") -> Existing:
    return Existing(id=id, kind=kind, text=text, slot=slot, content_hash=content_hash(text))


LISBON = mem("m1", "The user lives in Lisbon.", "home_city")
GOOGLE = mem("m2", "The user works at Google.", "employer")
SUSHI = mem("m3", "The user loves sushi.", "likes:sushi", "preference")
FRENCH = mem(
    "m4", "The user wants the assistant to answer in French.", "response_language", "instruction"
)
STORE = [LISBON, GOOGLE, SUSHI, FRENCH]


def test_a_move_supersedes_only_the_home_city() -> None:
    porto = cand("The user lives in Porto.", "home_city")
    assert plan(STORE, [porto]) == [Supersede(("m1",), porto)]
    assert plan(STORE, [porto])[0].old_id == "m1"  # type: ignore[union-attr]


def test_a_duplicate_merges_into_the_stored_memory() -> None:
    again = cand("the user lives in lisbon", "home_city")
    assert plan(STORE, [again]) == [Merge("m1", again)]


def test_a_duplicate_merges_whatever_its_slot() -> None:
    again = cand("The user lives in Lisbon!", None)
    assert plan(STORE, [again]) == [Merge("m1", again)]


def test_likes_then_dislikes_contradict() -> None:
    hate = cand("The user hates sushi.", "dislikes:sushi", "preference")
    assert plan(STORE, [hate]) == [Supersede(("m3",), hate)]


def test_an_unrelated_slot_is_untouched() -> None:
    dog = cand("The user has a dog named Rex.", "pet:dog:name")
    ramen = cand("The user loves ramen.", "likes:ramen", "preference")
    assert plan(STORE, [dog, ramen]) == [Add(dog), Add(ramen)]


def test_a_fact_without_a_slot_is_added_and_never_retires_anything() -> None:
    loose = cand("The user ran a marathon in 2019.", None)
    assert plan(STORE, [loose]) == [Add(loose)]


def test_identical_instructions_merge() -> None:
    again = cand(
        "The user wants the assistant to answer in French.", "response_language", "instruction"
    )
    assert plan(STORE, [again]) == [Merge("m4", again)]


def test_instructions_supersede_only_in_the_same_slot() -> None:
    german = cand(
        "The user wants the assistant to answer in German.", "response_language", "instruction"
    )
    emojis = cand("The user wants the assistant to never use emojis.", "emoji", "instruction")
    loose = cand("The user wants the assistant to cite sources.", None, "instruction")
    assert plan(STORE, [german, emojis, loose]) == [
        Supersede(("m4",), german),
        Add(emojis),
        Add(loose),
    ]


def test_instructions_and_facts_never_contradict_each_other() -> None:
    # Same slot name, different kinds: a fact cannot retire an instruction.
    fact = cand("The user answers in French at work.", "response_language")
    assert plan(STORE, [fact]) == [Add(fact)]


def test_two_candidates_for_one_slot_in_a_batch_keep_the_last() -> None:
    porto = cand("The user lives in Porto.", "home_city")
    faro = cand("The user lives in Faro.", "home_city")
    assert plan([], [porto, faro]) == [Add(faro)]
    assert plan(STORE, [porto, faro]) == [Supersede(("m1",), faro)]
    # The last word agrees with the store: nothing to retire.
    back = cand("The user lives in Lisbon.", "home_city")
    assert plan(STORE, [porto, back]) == [Merge("m1", back)]


def test_repeated_texts_in_a_batch_collapse() -> None:
    dog = cand("The user has a dog.", "pet:dog")
    loose = cand("The user ran a marathon.", None)
    assert plan([], [dog, loose, loose, dog]) == [Add(loose), Add(dog)]


def test_a_slot_held_twice_retires_both() -> None:
    twice = [LISBON, mem("m9", "The user lives in Braga.", "home_city")]
    porto = cand("The user lives in Porto.", "home_city")
    assert plan(twice, [porto]) == [Supersede(("m1", "m9"), porto)]


def test_nothing_to_plan() -> None:
    assert plan(STORE, []) == []
    assert plan([], []) == []


@pytest.mark.parametrize(
    ("kind", "slot", "key"),
    [
        ("fact", "home_city", "memory|home_city"),
        ("preference", "likes:Sushi", "memory|pref:sushi"),
        ("preference", "dislikes:sushi", "memory|pref:sushi"),
        ("instruction", "response_language", "instruction|response_language"),
        ("fact", None, None),
        ("fact", "  ", None),
    ],
)
def test_contradiction_keys(kind: str, slot: str | None, key: str | None) -> None:
    assert contradiction_key(kind, slot) == key


@dataclass
class Row:
    id: str
    candidate: Candidate
    sources: list[str]
    invalid_at: datetime | None = None
    superseded_by: str | None = None


@dataclass
class Store:
    """The applying half, as a caller would write it against the database."""

    rows: list[Row] = field(default_factory=list)

    def valid(self) -> list[Existing]:
        return [
            Existing(
                r.id,
                r.candidate.kind,
                r.candidate.text,
                r.candidate.slot,
                content_hash(r.candidate.text),
            )
            for r in self.rows
            if r.invalid_at is None
        ]

    def apply(self, actions: list[Action], turn: str, at: datetime) -> None:
        for action in actions:
            if isinstance(action, Merge):
                next(r for r in self.rows if r.id == action.memory_id).sources.append(turn)
                continue
            new = Row(f"m{len(self.rows) + 1}", action.candidate, [turn])
            self.rows.append(new)
            if isinstance(action, Supersede):
                for row in self.rows:
                    if row.id in action.old_ids:
                        row.invalid_at, row.superseded_by = at, new.id


def test_a_conversation_end_to_end_keeps_history_and_sources() -> None:
    store, rules = Store(), RuleExtractor()
    turns = [
        "I live in Lisbon and I love sushi. I work at Google.",
        "I moved to Porto last week.",
        "Honestly, I hate sushi now.",
        "I live in Porto.",
    ]
    for n, text in enumerate(turns):
        at = AT + timedelta(days=n)
        store.apply(plan(store.valid(), rules.extract(text, speaker="user", at=at)), f"t{n}", at)

    valid = {r.candidate.text: r.sources for r in store.rows if r.invalid_at is None}
    assert valid == {
        "The user works at Google.": ["t0"],
        "The user lives in Porto.": ["t1", "t3"],
        "The user hates sushi.": ["t2"],
    }
    retired = {r.candidate.text: r.superseded_by for r in store.rows if r.invalid_at}
    assert retired == {"The user lives in Lisbon.": "m4", "The user loves sushi.": "m5"}


from tests.fakes import ReplyModel  # noqa: E402

# --- session summaries ---------------------------------------------------------------------


SummaryModel = ReplyModel
SUMMARY = PromptLibrary().render(SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION, {})


SESSION = [
    ("user", "Hi"),
    ("assistant", "Hello! How can I help?"),
    ("user", "I'm planning a trip to Japan in April. What should I pack?"),
    ("assistant", "Layers, comfortable shoes and a rail pass."),
    ("user", "I'm vegetarian, so food matters. Where can I eat?"),
    ("assistant", "Try shojin ryori temples in Kyoto."),
    ("user", "i'm planning a trip to Japan in April"),
    ("user", "Thanks!"),
]


def test_extractive_summary_is_the_users_first_sentences_deduplicated() -> None:
    assert extractive(SESSION) == (
        "I'm planning a trip to Japan in April. I'm vegetarian, so food matters."
    )
    assert extractive(SESSION) == extractive(list(SESSION))  # deterministic


def test_extractive_summary_respects_max_chars() -> None:
    assert extractive(SESSION, max_chars=60) == "I'm planning a trip to Japan in April."
    clipped = extractive([("user", "word " * 50)], max_chars=30)
    assert len(clipped) <= 30
    assert clipped.endswith("…")
    assert extractive([("assistant", "Only the assistant spoke.")]) == ""
    assert extractive([]) == ""


def test_summary_without_a_model_is_extractive() -> None:
    assert summarize_session(SESSION) == extractive(SESSION)


def test_summary_with_a_model_is_the_models_and_sees_the_transcript() -> None:
    model = SummaryModel(reply="  The user is planning a vegetarian-friendly\ntrip to Japan. ")
    assert summarize_session(SESSION, chat_model=model, prompt=SUMMARY) == (
        "The user is planning a vegetarian-friendly trip to Japan."
    )
    system, transcript = model.calls[0]
    assert "long-term memory" in system.text
    assert transcript.text.splitlines()[:2] == ["User: Hi", "Assistant: Hello! How can I help?"]


def test_a_long_model_summary_is_clipped() -> None:
    model = SummaryModel(reply="The user talked about many things. " * 40)
    summary = summarize_session(SESSION, chat_model=model, prompt=SUMMARY, max_chars=100)
    assert len(summary) <= 100
    assert summary.endswith("…")


@pytest.mark.parametrize("model", [SummaryModel(error="down"), SummaryModel(reply="   ")])
def test_summary_falls_back_to_extractive(
    model: SummaryModel, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="memory.extraction.summaries"):
        assert summarize_session(SESSION, chat_model=model, prompt=SUMMARY) == extractive(SESSION)


def test_a_summary_model_without_its_prompt_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="summary prompt"):
        summarize_session(SESSION, chat_model=SummaryModel(reply="x"))


async def test_async_summary() -> None:
    model = SummaryModel(reply="The user plans a trip.")
    assert (
        await asummarize_session(SESSION, chat_model=model, prompt=SUMMARY)
        == "The user plans a trip."
    )
    assert await asummarize_session(SESSION) == extractive(SESSION)
    assert await asummarize_session(
        SESSION, chat_model=SummaryModel(error="x"), prompt=SUMMARY
    ) == extractive(SESSION)
