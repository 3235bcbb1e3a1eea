"""Semantic memory extraction by rules: phrasings, look-alikes, dates and content hashes.

The LLM extractor's tests are in ``test_extraction_llm.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graph.prompts import PromptLibrary
from memory.extraction.extractor import (
    EXTRACTION_PROMPT,
    EXTRACTION_PROMPT_VERSION,
    Candidate,
    RuleExtractor,
    content_hash,
    extract_memories,
    normalize,
)

AT = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # a Sunday
rules = RuleExtractor()
PROMPT = PromptLibrary().source(EXTRACTION_PROMPT, EXTRACTION_PROMPT_VERSION)


def found(text: str) -> list[tuple[str, str, str | None]]:
    return [(c.kind, c.text, c.slot) for c in rules.extract(text, speaker="user", at=AT)]


F, P, I = "fact", "preference", "instruction"  # noqa: E741


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # where the user lives and comes from
        ("I live in Lisbon.", [(F, "The user lives in Lisbon.", "home_city")]),
        ("I moved to Lisbon last week.", [(F, "The user lives in Lisbon.", "home_city")]),
        ("Actually, I now live in Porto", [(F, "The user lives in Porto.", "home_city")]),
        ("I'm based in New York City.", [(F, "The user lives in New York City.", "home_city")]),
        ("I live in Lisbon, not Porto.", [(F, "The user lives in Lisbon.", "home_city")]),
        ("I moved to St. Louis.", [(F, "The user lives in St. Louis.", "home_city")]),
        ("We moved to the Netherlands.", [(F, "The user lives in the Netherlands.", "home_city")]),
        ("I've lived in Berlin since 2019.", [(F, "The user lives in Berlin.", "home_city")]),
        ("I'm from São Paulo.", [(F, "The user is originally from São Paulo.", "hometown")]),
        (
            "I grew up in Rio de Janeiro.",
            [(F, "The user is originally from Rio de Janeiro.", "hometown")],
        ),
        ("I was born in Dublin.", [(F, "The user was born in Dublin.", "birthplace")]),
        # work
        ("I work at Google.", [(F, "The user works at Google.", "employer")]),
        ("I work for the government.", [(F, "The user works for the government.", "employer")]),
        ("I work for myself.", [(F, "The user is self-employed.", "employer")]),
        (
            "I started a new job at Microsoft two weeks ago.",
            [(F, "The user works at Microsoft.", "employer")],
        ),
        ("I work as a nurse.", [(F, "The user is a nurse.", "job")]),
        ("I'm an accountant.", [(F, "The user is an accountant.", "job")]),
        (
            "I'm a software engineer at Spotify.",
            [
                (F, "The user is a software engineer.", "job"),
                (F, "The user works at Spotify.", "employer"),
            ],
        ),
        (
            "I work at Google as a product manager.",
            [
                (F, "The user works at Google.", "employer"),
                (F, "The user is a product manager.", "job"),
            ],
        ),
        (
            "I'm a PhD student at Oxford.",
            [
                (F, "The user is a PhD student.", "job"),
                (F, "The user studies at Oxford.", "school"),
            ],
        ),
        # who they are
        ("My name is Ada Lovelace.", [(F, "The user's name is Ada Lovelace.", "name")]),
        ("I'm 34 years old.", [(F, "The user is 34 years old.", "age")]),
        ("I just turned 40.", [(F, "The user is 40 years old.", "age")]),
        ("My birthday is March 3rd.", [(F, "The user's birthday is March 3rd.", "birthday")]),
        ("My birthday is tomorrow!", [(F, "The user's birthday is November 23.", "birthday")]),
        ("I was born in 1990.", [(F, "The user was born in 1990.", "birth_year")]),
        # pets and family
        ("I have a dog named Rex.", [(F, "The user has a dog named Rex.", "pet:dog:name")]),
        ("We have a cat called Luna.", [(F, "The user has a cat named Luna.", "pet:cat:name")]),
        ("My dog's name is Biscuit.", [(F, "The user has a dog named Biscuit.", "pet:dog:name")]),
        (
            "I have a golden retriever named Max.",
            [(F, "The user has a dog named Max.", "pet:dog:name")],
        ),
        (
            "Yesterday I adopted a kitten named Mochi.",
            [(F, "The user has a cat named Mochi.", "pet:cat:name")],
        ),
        ("I have a cat.", [(F, "The user has a cat.", "pet:cat")]),
        (
            "I'm married to Anna.",
            [
                (F, "The user is married.", "marital_status"),
                (F, "The user is married to Anna.", "partner_name"),
            ],
        ),
        ("My wife's name is Maria.", [(F, "The user's wife is named Maria.", "partner_name")]),
        ("My husband is called Tom.", [(F, "The user's husband is named Tom.", "partner_name")]),
        ("I'm single.", [(F, "The user is single.", "marital_status")]),
        ("I have two kids.", [(F, "The user has two kids.", "children")]),
        ("I have a daughter.", [(F, "The user has a daughter.", "children:daughters")]),
        # favourites, likes and dislikes
        (
            "My favourite food is sushi.",
            [(P, "The user's favorite food is sushi.", "favorite:food")],
        ),
        (
            "My favorite colour is blue.",
            [(P, "The user's favorite color is blue.", "favorite:color")],
        ),
        ("I love sushi.", [(P, "The user loves sushi.", "likes:sushi")]),
        ("I really like jazz.", [(P, "The user really likes jazz.", "likes:jazz")]),
        (
            "I enjoy hiking in the mountains.",
            [(P, "The user enjoys hiking in the mountains.", "likes:hiking in the mountains")],
        ),
        (
            "I'm really into rock climbing.",
            [(P, "The user is really into rock climbing.", "likes:rock climbing")],
        ),
        (
            "I'm a huge fan of the Beatles.",
            [(P, "The user is a huge fan of the Beatles.", "likes:beatles")],
        ),
        ("I love my job.", [(P, "The user loves their job.", "likes:job")]),
        ("I hate sushi.", [(P, "The user hates sushi.", "dislikes:sushi")]),
        (
            "I absolutely hate cold weather.",
            [(P, "The user absolutely hates cold weather.", "dislikes:cold weather")],
        ),
        ("I can't stand cilantro.", [(P, "The user can't stand cilantro.", "dislikes:cilantro")]),
        (
            "I don't like mushrooms.",
            [(P, "The user doesn't like mushrooms.", "dislikes:mushrooms")],
        ),
        (
            "I don't like sushi anymore.",
            [(P, "The user doesn't like sushi.", "dislikes:sushi")],
        ),
        ("I dislike loud music.", [(P, "The user dislikes loud music.", "dislikes:loud music")]),
        (
            "I'm not a fan of horror movies.",
            [(P, "The user is not a fan of horror movies.", "dislikes:horror movies")],
        ),
        ("I prefer short answers.", [(P, "The user prefers short answers.", "response_length")]),
        ("I prefer tea over coffee.", [(P, "The user prefers tea over coffee.", "prefers:tea")]),
        # diet and health
        ("I'm vegetarian.", [(F, "The user is vegetarian.", "diet")]),
        ("I'm a vegan.", [(F, "The user is vegan.", "diet")]),
        ("I'm allergic to peanuts.", [(F, "The user is allergic to peanuts.", "allergy:peanuts")]),
        (
            "I'm lactose intolerant.",
            [(F, "The user is lactose intolerant.", "intolerance:lactose")],
        ),
        # languages and learning
        (
            "I speak Portuguese and English.",
            [
                (F, "The user speaks Portuguese.", "speaks:portuguese"),
                (F, "The user speaks English.", "speaks:english"),
            ],
        ),
        ("I speak fluent French.", [(F, "The user speaks French.", "speaks:french")]),
        (
            "I'm a native Spanish speaker.",
            [(F, "The user's native language is Spanish.", "native_language")],
        ),
        ("I'm learning Japanese.", [(F, "The user is learning Japanese.", "learning:japanese")]),
        (
            "I'm learning to play guitar.",
            [(F, "The user is learning to play guitar.", "learning:to play guitar")],
        ),
        # standing instructions
        (
            "Always answer in French.",
            [(I, "The user wants the assistant to answer in French.", "response_language")],
        ),
        (
            "Please answer in Spanish.",
            [(I, "The user wants the assistant to answer in Spanish.", "response_language")],
        ),
        (
            "Could you please reply in Italian?",
            [(I, "The user wants the assistant to answer in Italian.", "response_language")],
        ),
        (
            "Answer in German from now on.",
            [(I, "The user wants the assistant to answer in German.", "response_language")],
        ),
        ("Never use emojis.", [(I, "The user wants the assistant to avoid emoji.", "emoji")]),
        (
            "Please don't use jargon.",
            [(I, "The user wants the assistant to not use jargon.", None)],
        ),
        (
            "From now on, use metric units.",
            [(I, "The user wants the assistant to use metric units.", "units")],
        ),
        (
            "Keep your answers short.",
            [(I, "The user wants the assistant to keep answers short.", "response_length")],
        ),
        (
            "Please be concise.",
            [(I, "The user wants the assistant to keep answers short.", "response_length")],
        ),
        (
            "From now on, call me Captain.",
            [(I, "The user wants to be called Captain.", "preferred_name")],
        ),
        ("Could you call me Sam?", [(I, "The user wants to be called Sam.", "preferred_name")]),
        (
            "Stop calling me Captain.",
            [(I, "The user does not want to be called by a nickname.", "preferred_name")],
        ),
        (
            "Always be honest with me.",
            [(I, "The user wants the assistant to be honest with the user.", None)],
        ),
        ("From now on, I'm vegetarian.", [(F, "The user is vegetarian.", "diet")]),
    ],
)
def test_rule_extractor_phrasings(text: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I don't live in Paris anymore.",
        "I no longer work at Google.",
        "I'm not vegetarian.",
        "I'm no longer a teacher.",
        "My friend lives in Rome.",
        "My brother works at Apple.",
        "I think my sister lives in Berlin.",
        "Do I live in Rome?",
        "Where do I work?",
        "Am I allergic to peanuts?",
        "Maybe I live in Rome.",
        "If I lived in Paris, I would be happy.",
        "I used to live in Paris.",
        "I'd love to live in Tokyo.",
        "I'm moving to Berlin next month.",
        "They say I live in a bubble.",
        "I work at night.",
        "I've lived in Paris.",
        "I'm 5 minutes away.",
        "I'm a bit tired.",
        "I'm a morning person.",
        "I'm single-handedly running this.",
        "I'm studying for an exam.",
        "I like your answer.",
        "I love you!",
        "I love it.",
        "I hate when people interrupt me.",
        "I like to think I'm smart.",
        "I always forget my keys.",
        "Always happy to help!",
        "Never mind.",
        "Don't worry about it.",
        "Please don't do that.",
        "my friend calls me Captain",
        "What's the weather like?",
        "Thanks!",
        "",
    ],
)
def test_rule_extractor_ignores_look_alikes(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have a hot dog.", "The user has a hot dog."),  # no pet named "hot"
        ("I have a cat allergy.", "The user has a cat allergy."),
        ("My wife is Brazilian.", "The user's wife is Brazilian."),
    ],
)
def test_pet_look_alikes_are_plain_statements_without_a_pet_slot(text: str, expected: str) -> None:
    got = rules.extract(text, speaker="user", at=AT)
    assert [(c.text, c.slot) for c in got] == [(expected, None)]


def test_relative_dates_set_valid_from_per_clause() -> None:
    got = rules.extract("I moved to Lisbon last week and I work at Google.", speaker="user", at=AT)
    assert [(c.slot, c.valid_from) for c in got] == [
        ("home_city", datetime(2026, 11, 15, tzinfo=UTC)),
        ("employer", None),
    ]
    fronted = rules.extract("Last week, I moved to Porto.", speaker="user", at=AT)
    assert fronted[0].valid_from == datetime(2026, 11, 15, tzinfo=UTC)
    since = rules.extract("I've lived in Berlin since 2019.", speaker="user", at=AT)
    assert since[0].valid_from == datetime(2019, 1, 1, tzinfo=UTC)
    assert rules.extract("I live in Lisbon.", speaker="user", at=AT)[0].valid_from is None


def test_multi_sentence_text_is_split_and_candidates_are_complete() -> None:
    text = (
        "Hi! I'm Sam, I live in Lisbon, Portugal and I'm a teacher. Do you know Porto? "
        "My friend lives there. I have a dog named Rex; I love sushi.\nNever use emojis."
    )
    got = rules.extract(text, speaker="user", at=AT)
    assert [c.slot for c in got] == ["home_city", "job", "pet:dog:name", "likes:sushi", "emoji"]
    assert all(c.speaker == "user" for c in got)
    assert got[0] == Candidate("fact", "The user lives in Lisbon.", "home_city", "user", None)


def test_repeated_statements_in_one_turn_are_deduplicated() -> None:
    got = rules.extract("I love sushi. I love sushi!", speaker="user", at=AT)
    assert [c.text for c in got] == ["The user loves sushi."]


@pytest.mark.parametrize("speaker", ["assistant", "system", "tool"])
def test_rule_extractor_takes_only_the_users_own_words(speaker: str) -> None:
    assert rules.extract("I live in Lisbon. Always answer in French.", speaker=speaker, at=AT) == []


async def test_rule_extractor_async_matches_sync() -> None:
    text = "I live in Lisbon and I love sushi."
    assert await rules.aextract(text, speaker="user", at=AT) == rules.extract(
        text, speaker="user", at=AT
    )


def test_extract_memories_defaults_to_rules() -> None:
    assert extract_memories("I live in Lisbon.", speaker="user", at=AT) == rules.extract(
        "I live in Lisbon.", speaker="user", at=AT
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The user lives in Lisbon.", "the user lives in lisbon"),
        ("The user  lives\nin Lisbon!", "The user lives in Lisbon."),
        ("The user likes ﬁsh.", "The user likes fish."),  # NFKC folds the ligature
    ],
)
def test_content_hash_ignores_case_spacing_and_end_punctuation(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)
    assert content_hash(a) == content_hash(b)


def test_content_hash_is_sha256_of_the_normalized_text() -> None:
    import hashlib

    assert normalize("  The User LIVES in Lisbon... ") == "the user lives in lisbon"
    digest = hashlib.sha256(b"the user lives in lisbon").hexdigest()
    assert content_hash("The user lives in Lisbon.") == digest
    assert content_hash("The user lives in Lisbon.") != content_hash("The user lives in Porto.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm lactose intolerant.", "The user is lactose intolerant."),
        ("I have two kids and a dog.", "The user has two kids and a dog."),
        ("I don't drink alcohol.", "The user doesn't drink alcohol."),
        ("I only listen to jazz.", "The user only listens to jazz."),
        ("My phone is an old Nokia.", "The user's phone is an old Nokia."),
        ("Autumn is my favourite season.", "The user's favourite season is Autumn."),
    ],
)
def test_durable_self_statements_are_learned_in_the_third_person(text: str, expected: str) -> None:
    assert [c.text for c in rules.extract(text, speaker="user", at=AT)] == [expected]


@pytest.mark.parametrize(
    "text", ["I'm trying to plan the week.", "I'm so excited!", "I have to go.", "I love it."]
)
def test_passing_states_are_not_learned(text: str) -> None:
    assert rules.extract(text, speaker="user", at=AT) == []


def test_facts_about_a_named_speaker_are_attributed_and_dated() -> None:
    at = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    text = "Hey Mel! I went to a support group yesterday. I'm vegetarian. Call me Caz."
    got = rules.extract(text, speaker="assistant", at=at, subject="Caroline")
    assert [c.text for c in got] == [
        "Caroline went to a support group yesterday (2023-05-07).",
        "Caroline is vegetarian.",
    ]  # her words to Mel are no instruction to the assistant
    assert got[0].valid_from == datetime(2023, 5, 7, tzinfo=UTC)
    lives = rules.extract("I live in Lisbon.", speaker="user", at=at, subject="Caroline")
    assert [(c.text, c.slot) for c in lives] == [
        ("Caroline lives in Lisbon.", "caroline:home_city")
    ]
