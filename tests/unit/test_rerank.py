"""The second-stage reranker: its features, its model file and the order it gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from memory.records.tables import Memory
from memory.retrieval.fusion import Fused
from memory.retrieval.rerank import FEATURES, LinearReranker, Signals, features, shipped


def _row(i: str, text: str, kind: str = "episodic") -> Memory:
    return Memory(
        id=i,
        user_id="u",
        kind=kind,
        text=text,
        content_hash=i,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


ROWS = {
    "a": _row("a", "Wow, Caroline, that looks amazing!"),
    "b": _row("b", "I researched adoption agencies last week."),
    "c": _row("c", "Did you research anything?"),
}
FUSED = [Fused("a", 0.09, {"dense": 1}), Fused("b", 0.06, {"lexical": 1}), Fused("c", 0.03, {})]
SIGNALS = Signals(dense={"a": 0.62, "c": 0.40}, lexical={"b": 8.0}, named=frozenset({"b"}))


def _column(x: np.ndarray, name: str) -> list[float]:
    return [round(float(v), 3) for v in x[:, FEATURES.index(name)]]


def test_features_read_what_the_first_stage_saw() -> None:
    x = features("What did Caroline research?", FUSED, ROWS, SIGNALS)
    assert x.shape == (3, len(FEATURES))
    assert _column(x, "fused") == [1.0, 0.667, 0.333]
    assert _column(x, "dense") == [0.62, 0.0, 0.4]
    assert _column(x, "dense_gap") == [0.0, -1.0, -0.22]
    assert _column(x, "in_lexical") == [0.0, 1.0, 0.0]
    assert _column(x, "named") == [0.0, 1.0, 0.0]
    assert _column(x, "question") == [0.0, 0.0, 1.0]
    # content words "caroline", "research": the first turn names Caroline, the second
    # says "researched" (a prefix match only), the third "research" exactly.
    assert _column(x, "coverage") == [0.5, 0.0, 0.5]
    assert _column(x, "stem_coverage") == [0.5, 0.5, 0.5]


def _model(weights: dict[str, float]) -> LinearReranker:
    coef = np.array([weights.get(n, 0.0) for n in FEATURES])
    n = len(FEATURES)
    return LinearReranker(np.zeros(n), np.ones(n), coef, 0.0, {"test": True})


def test_rerank_orders_by_the_model_and_keeps_the_fused_order_on_ties() -> None:
    by_name = _model({"named": 1.0}).rerank("q", FUSED, ROWS, SIGNALS)
    assert [f.id for f in by_name] == ["b", "a", "c"]
    flat = _model({}).rerank("q", FUSED, ROWS, SIGNALS)
    assert [f.id for f in flat] == ["a", "b", "c"]


def test_a_saved_model_loads_back_and_one_for_other_features_is_refused(tmp_path: Path) -> None:
    model = _model({"coverage": 2.0, "question": -1.0})
    model.save(tmp_path / "m.npz")
    back = LinearReranker.load(tmp_path / "m.npz")
    assert np.allclose(back.coef, model.coef) and back.about == {"test": True}
    np.savez(
        tmp_path / "old.npz",
        features=np.array(FEATURES[:-1]),
        mean=np.zeros(1),
        scale=np.ones(1),
        coef=np.zeros(1),
        intercept=np.zeros(1),
        about=np.array("{}"),
    )
    with pytest.raises(ValueError, match="retrain"):
        LinearReranker.load(tmp_path / "old.npz")


def test_the_shipped_model_matches_the_features_and_says_how_it_was_trained() -> None:
    model = shipped()
    assert model.coef.shape == (len(FEATURES),)
    assert "locomo" in model.about["trained_on"]
