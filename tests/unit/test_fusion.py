"""Reciprocal-rank fusion and the priors applied after it."""

from __future__ import annotations

import pytest

from memory.retrieval.fusion import (
    apply_priors,
    is_question,
    memory_prior,
    reciprocal_rank_fusion,
    spread_to_neighbours,
)


def test_items_found_by_both_retrievers_win() -> None:
    fused = reciprocal_rank_fusion(
        {"dense": ["a", "b", "c"], "lexical": ["c", "d", "a"]}, {"dense": 1.0, "lexical": 1.0}
    )
    assert [f.id for f in fused][:2] == ["a", "c"]
    assert fused[0].ranks == {"dense": 1, "lexical": 3}


def test_weights_scale_votes_and_zero_weight_ignores_a_retriever() -> None:
    rankings = {"dense": ["a"], "lexical": ["b"], "recency": ["c"]}
    fused = reciprocal_rank_fusion(rankings, {"dense": 1.0, "lexical": 2.0, "recency": 0.0})
    assert [f.id for f in fused] == ["b", "a"]


def test_duplicates_vote_once_and_order_is_deterministic() -> None:
    fused = reciprocal_rank_fusion({"dense": ["x", "x", "y"]}, {})
    assert [f.id for f in fused] == ["x", "y"] and fused[0].ranks == {"dense": 1}
    tie = reciprocal_rank_fusion({"a": ["p"], "b": ["q"]}, {})
    assert [f.id for f in tie] == ["p", "q"]


def test_priors_move_items_by_fractions_of_a_first_place_vote() -> None:
    fused = reciprocal_rank_fusion({"dense": ["asked", "said"]}, {"dense": 1.0}, rrf_k=10)
    priors = {
        "asked": memory_prior("user", "Any tips?", user_said=0.6, question=0.3),
        "said": memory_prior("user", "I live in Rome.", user_said=0.6, question=0.3),
    }
    assert priors == {"asked": pytest.approx(0.3), "said": pytest.approx(0.6)}
    moved = apply_priors(fused, priors, unit=1 / 11)
    assert [f.id for f in moved] == ["said", "asked"]
    assert moved[0].ranks == {"dense": 2}  # the retrievers' ranks are kept
    assert [f.id for f in apply_priors(fused, {}, unit=1 / 11)] == ["asked", "said"]


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Any tips for sleeping better?", True),
        ("How? Why?", True),
        ('Is it "good"?', True),
        ("Moved to Lyon! Any tips?", False),
        ("I live in Rome.", False),
        ("", False),
    ],
)
def test_a_memory_that_only_asks_is_a_question(text: str, asks: bool) -> None:
    assert is_question(text) is asks
    assert memory_prior("assistant", text, user_said=1.0, question=0.5) == (-0.5 if asks else 0.0)


def test_neighbours_get_a_share_of_an_items_score_and_can_enter() -> None:
    fused = reciprocal_rank_fusion({"dense": ["a", "b", "c"]}, {"dense": 1.0}, rrf_k=10)
    spread = spread_to_neighbours(fused, {"a": ["c", "x"]}, weight=0.5)
    by_id = {f.id: f for f in spread}
    assert by_id["c"].score == pytest.approx(1 / 13 + 0.5 / 11)
    assert by_id["x"].score == pytest.approx(0.5 / 11) and by_id["x"].ranks == {"context": 1}
    assert [f.id for f in spread][:2] == ["c", "a"]
    assert [f.id for f in spread_to_neighbours(fused, {}, weight=0.5)] == ["a", "b", "c"]
