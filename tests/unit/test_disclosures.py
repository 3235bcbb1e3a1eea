"""The disclosure classifier's wrapper around an extractor: what it quotes, what it leaves
to the rules, whose words count. A one-dimensional stand-in embedder and classifier decide
which sentences score high, so each rule of the wrapper is tested on its own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from memory.extraction.disclosures import (
    DisclosingExtractor,
    DisclosureClassifier,
    statements,
)
from memory.extraction.extractor import Candidate

AT = datetime(2026, 5, 4, 12, tzinfo=UTC)


class MarkerEmbedder:
    """A sentence's vector is ``[1]`` when it holds the word "durably", else ``[0]``."""

    dimension = 1
    model_id = "marker"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[1.0 if "durably" in t.lower() else 0.0] for t in texts]


class StubRules:
    """An inner extractor that finds ``found[sentence]`` in each sentence it is given."""

    def __init__(self, found: dict[str, list[Candidate]]) -> None:
        self.found = found

    def extract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        return [c for sentence, cs in self.found.items() if sentence in text for c in cs]

    async def aextract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        return self.extract(text, speaker=speaker, at=at, subject=subject)


def _wrap(found: dict[str, list[Candidate]] | None = None) -> DisclosingExtractor:
    classifier = DisclosureClassifier([8.0], -4.0, 0.5)  # p = 0.98 for "durably", else 0.02
    return DisclosingExtractor(StubRules(found or {}), classifier, MarkerEmbedder())


def test_a_high_scoring_first_person_statement_is_quoted_with_its_speaker() -> None:
    out = _wrap().extract("Durably, sugar is off the menu for me.", speaker="user", at=AT)
    assert [(c.kind, c.text, c.slot) for c in out] == [
        ("fact", 'The user said: "Durably, sugar is off the menu for me."', None)
    ]


def test_low_scores_questions_and_sentences_without_a_first_person_word_are_not() -> None:
    wrapper = _wrap()
    assert wrapper.extract("I watched a film yesterday.", speaker="user", at=AT) == []
    assert wrapper.extract("Could I durably keep my bike here?", speaker="user", at=AT) == []
    assert wrapper.extract("Octopuses are durably clever.", speaker="user", at=AT) == []
    assert wrapper.embedder.calls == [["I watched a film yesterday."]]  # type: ignore[attr-defined]


def test_the_assistant_says_nothing_about_the_user_but_a_named_speaker_about_themselves() -> None:
    text = "I durably avoid driving at night."
    assert _wrap().extract(text, speaker="assistant", at=AT) == []
    [named] = _wrap().extract(text, speaker="assistant", at=AT, subject="Melanie")
    assert named.text == 'Melanie said: "I durably avoid driving at night."'


def test_the_quote_replaces_slotless_rewrites_of_its_sentence_and_keeps_the_rest() -> None:
    sentence = "The banjo is durably my instrument, I play every day."
    rewrite = Candidate("fact", "The user plays every day.", None, "user", None)
    elsewhere = Candidate("fact", "The user has a dog.", None, "user", None)
    wrapper = _wrap({sentence: [rewrite], "I have a dog.": [elsewhere]})
    out = wrapper.extract(f"{sentence} I have a dog.", speaker="user", at=AT)
    assert [c.text for c in out] == ["The user has a dog.", f'The user said: "{sentence}"']


def test_a_sentence_the_rules_fill_a_slot_from_is_left_to_the_rules() -> None:
    sentence = "I durably live in Lisbon."
    slotted = Candidate("fact", "The user lives in Lisbon.", "home_city", "user", None)
    out = _wrap({sentence: [slotted]}).extract(sentence, speaker="user", at=AT)
    assert out == [slotted]  # a later "I moved to Porto" supersedes it; a quote would stay


def test_relative_dates_in_a_quote_are_resolved_against_the_turn() -> None:
    [quote] = _wrap().extract("Since last year I durably swim daily.", speaker="user", at=AT)
    assert "2025" in quote.text and quote.valid_from is not None


def test_statements_are_first_person_sentences_that_are_not_questions() -> None:
    assert statements("Hi. I keep bees. Do you? We moved here") == ["I keep bees.", "We moved here"]
