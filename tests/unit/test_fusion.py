"""Reciprocal-rank fusion."""

from __future__ import annotations

from memory.fusion import reciprocal_rank_fusion


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
