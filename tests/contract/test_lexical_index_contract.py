"""The LexicalIndex contract, on SQLite FTS5 and on PostgreSQL full-text search."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from memory.retrieval.lexical import (
    PostgresFtsIndex,
    SqliteFtsIndex,
    include_name,
    make_lexical_index,
    query_terms,
)
from memory.retrieval.protocols import IndexEntry, LexicalIndex

ALICE = "usr_" + "a" * 32
BOB = "usr_" + "b" * 32


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


@pytest.fixture
def index(engine: Engine) -> LexicalIndex:
    return make_lexical_index(engine)


def _entry(memory_id: str, text: str, kind: str = "fact") -> IndexEntry:
    return IndexEntry(memory_id=memory_id, text=text, kind=kind, created_at=1.0)


def _ids(
    index: LexicalIndex, user: str, text: str, *, k: int = 10, kinds: list[str] | None = None
) -> list[str]:
    return [h.memory_id for h in index.query(user, text, k=k, kinds=kinds)]


def test_factory_picks_the_dialect(engine: Engine, index: LexicalIndex) -> None:
    expected = SqliteFtsIndex if engine.dialect.name == "sqlite" else PostgresFtsIndex
    assert type(index) is expected
    assert isinstance(index, LexicalIndex)


def test_more_matching_terms_rank_higher(index: LexicalIndex) -> None:
    index.upsert(
        ALICE,
        [
            _entry("m_both", "my sister Clara lives in Lisbon"),
            _entry("m_city", "Lisbon has steep hills"),
            _entry("m_none", "I drink green tea every morning"),
            _entry("m_other", "the printer at work is broken"),
        ],
    )
    hits = index.query(ALICE, "Where does Clara live? Lisbon?", k=10)
    assert [h.memory_id for h in hits] == ["m_both", "m_city"]
    assert hits[0].score > hits[1].score


def test_rarer_terms_rank_higher(index: LexicalIndex) -> None:
    index.upsert(
        ALICE,
        [
            _entry("m_1", "the cat sat on the sofa"),
            _entry("m_2", "a cat ran across the road"),
            _entry("m_3", "our cat sleeps all day"),
            _entry("m_4", "a mouse hid in the kitchen"),
        ],
    )
    hits = _ids(index, ALICE, "cat mouse")
    assert hits[0] == "m_4"
    assert set(hits) == {"m_1", "m_2", "m_3", "m_4"}


def test_stemmed_forms_match(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_cat", "I have a cat"), _entry("m_x", "nothing here")])
    assert _ids(index, ALICE, "cats") == ["m_cat"]
    assert _ids(index, ALICE, "CAT!") == ["m_cat"]


def test_users_are_isolated(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_a", "I love sailing")])
    index.upsert(BOB, [_entry("m_b", "I love sailing"), _entry("m_a", "sailing is boring")])
    assert _ids(index, ALICE, "sailing") == ["m_a"]
    assert set(_ids(index, BOB, "sailing")) == {"m_a", "m_b"}
    assert _ids(index, ALICE, "boring") == []
    # The same memory id under two users names two entries.
    index.delete(BOB, ["m_a"])
    assert _ids(index, ALICE, "sailing") == ["m_a"]
    assert (index.count(ALICE), index.count(BOB)) == (1, 1)


def test_kinds_filter(index: LexicalIndex) -> None:
    index.upsert(
        ALICE,
        [
            _entry("m_f", "coffee with milk", "fact"),
            _entry("m_p", "coffee without sugar", "preference"),
            _entry("m_e", "we talked about coffee", "episodic"),
        ],
    )
    assert set(_ids(index, ALICE, "coffee", kinds=["preference", "episodic"])) == {"m_p", "m_e"}
    assert _ids(index, ALICE, "coffee", kinds=["summary"]) == []
    assert _ids(index, ALICE, "coffee", kinds=[]) == []
    assert len(_ids(index, ALICE, "coffee", k=2)) == 2
    assert _ids(index, ALICE, "coffee", k=0) == []


def test_delete(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_1", "red bicycle"), _entry("m_2", "red car")])
    index.delete(ALICE, ["m_1", "m_unknown"])
    assert _ids(index, ALICE, "red") == ["m_2"]
    assert _ids(index, ALICE, "bicycle") == []
    index.delete(ALICE, [])
    index.delete(BOB, ["m_2"])  # another user's id: nothing happens
    assert index.count(ALICE) == 1


def test_delete_user(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_1", "red bicycle"), _entry("m_2", "red car")])
    index.upsert(BOB, [_entry("m_3", "red boat")])
    index.delete_user(ALICE)
    assert index.count(ALICE) == 0
    assert _ids(index, ALICE, "red") == []
    assert _ids(index, BOB, "red") == ["m_3"]
    index.delete_user(ALICE)  # idempotent


def test_count(index: LexicalIndex) -> None:
    assert index.count(ALICE) == 0
    index.upsert(ALICE, [_entry(f"m_{i}", f"note number {i}") for i in range(5)])
    assert index.count(ALICE) == 5
    assert index.count(BOB) == 0


def test_upsert_replaces_the_text(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_1", "I live in Berlin"), _entry("m_2", "I work in Berlin")])
    index.upsert(ALICE, [_entry("m_1", "I moved to Madrid", "episodic")])
    assert index.count(ALICE) == 2
    assert _ids(index, ALICE, "Berlin") == ["m_2"]
    assert _ids(index, ALICE, "Madrid", kinds=["episodic"]) == ["m_1"]
    # Within one call, the last entry for an id wins.
    index.upsert(ALICE, [_entry("m_3", "first words"), _entry("m_3", "last words")])
    assert _ids(index, ALICE, "first") == []
    assert _ids(index, ALICE, "last") == ["m_3"]


HOSTILE = [
    '"',
    '"unbalanced',
    "*",
    "cat*",
    "NEAR(",
    "NEAR(cat dog, 2)",
    "-",
    "-cat",
    "a:b",
    "text:cat",
    "user_id:usr",
    "",
    "   ",
    "the and of a",
    "AND OR NOT",
    "or",
    "(((",
    "cat & dog | !mouse <-> 'x'",
    "café \x00 nul",
    "🙂🙂",
    "x" * 5000,
    "cat " * 1250,
    "word " * 1000 + "cat",
    "'; DROP TABLE memory_terms; --",
]


def test_hostile_queries_never_raise(index: LexicalIndex) -> None:
    index.upsert(ALICE, [_entry("m_cat", "the cat and the dog"), _entry("m_x", "café")])
    index.upsert(BOB, [_entry("m_bob", "the cat and the dog")])
    for text in HOSTILE:  # one database for all of them: a fresh one costs ~0.5 s
        hits = index.query(ALICE, text, k=5)
        assert all(h.memory_id in {"m_cat", "m_x"} for h in hits), text
    assert _ids(index, ALICE, "cat*") == ["m_cat"]
    assert _ids(index, ALICE, "NEAR(cat dog, 2)") == ["m_cat"]
    assert index.count(ALICE) == 2


def test_query_terms() -> None:
    assert query_terms('Où "est" le-chat? NEAR(a:b) *x*') == [
        "où",
        "est",
        "le",
        "chat",
        "near",
        "a",
        "b",
        "x",
    ]
    assert query_terms("a_b A a") == ["a", "b"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 32


def test_autogenerate_filter_skips_only_lexical_tables() -> None:
    for name in ["memory_terms", "memory_fts", "memory_fts_data", "memory_fts_config"]:
        assert include_name(name, "table", {}) is False
    for name in ["memories", "memory_sources", "users"]:
        assert include_name(name, "table", {}) is True
    assert include_name("memory_terms", "column", {}) is True
