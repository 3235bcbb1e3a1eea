"""The real all-MiniLM-L6-v2 embedder, loaded from its wheel."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from memory.retrieval.embeddings import MiniLMEmbedder
from memory.retrieval.protocols import Embedder

TEXTS = [
    "My sister lives in Lisbon.",
    "Clara, my sister, has moved to Lisbon in Portugal.",
    "The printer on the third floor is out of toner.",
    "I prefer short answers without emoji.",
    "",
    "Ich trinke morgens gerne Kaffee.",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    # Loads lazily, inside the first test, after the autouse offline fixture ran.
    return MiniLMEmbedder(batch_size=4)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_unit_length_and_384_wide(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.dimension, embedder.model_id) == (384, "all-MiniLM-L6-v2")
    vectors = embedder.embed(TEXTS)
    assert len(vectors) == len(TEXTS)
    for v in vectors:
        assert len(v) == 384
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0, abs=1e-5)
    assert embedder.embed([]) == []


def test_similar_sentences_are_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    sister, sister2, printer, *_ = embedder.embed(TEXTS)
    assert _cos(sister, sister2) > 0.6
    assert _cos(sister, sister2) > _cos(sister, printer) + 0.3


def test_batch_equals_one_by_one_and_is_deterministic(embedder: MiniLMEmbedder) -> None:
    batch = embedder.embed(TEXTS)
    for text, vector in zip(TEXTS, batch, strict=True):
        (single,) = embedder.embed([text])
        assert _cos(single, vector) > 1 - 1e-5
        assert single == pytest.approx(vector, abs=1e-5)
    again = embedder.embed(TEXTS)
    for a, b in zip(again, batch, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


def test_threads_share_one_model(embedder: MiniLMEmbedder) -> None:
    expected = embedder.embed(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: embedder.embed(TEXTS), range(4)))
    for r in results:
        for a, b in zip(r, expected, strict=True):
            assert a == pytest.approx(b, abs=1e-6)
    assert embedder.load() is embedder.load()


def test_one_string_is_refused(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_load_is_lazy() -> None:
    fresh = MiniLMEmbedder()
    assert fresh._model is None


def test_the_onnx_backend_gives_the_torch_vectors(embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    onnx = MiniLMEmbedder(backend="onnx", onnx_cache_dir=tmp_path, batch_size=4)
    texts = [*TEXTS, TEXTS[0]]  # a repeated text is embedded once and returned twice
    got = np.asarray(onnx.embed(texts))
    want = np.asarray(embedder.embed(texts))
    assert got.shape == (len(texts), 384)
    assert np.abs(got - want).max() < 1e-4
    (single,) = onnx.embed([TEXTS[1]])  # the one-thread query lane
    assert np.abs(np.asarray(single) - want[1]).max() < 1e-4
    exports = list(tmp_path.glob("all-MiniLM-L6-v2-*.onnx"))
    assert len(exports) == 1
    again = MiniLMEmbedder(backend="onnx", onnx_cache_dir=tmp_path)
    again.embed(["reuses the export"])
    assert list(tmp_path.glob("*.onnx")) == exports and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="onnx_cache_dir"):
        MiniLMEmbedder(backend="onnx")
