"""A turn's two searches embed its message once."""

from __future__ import annotations

from collections.abc import Sequence

from memory.retrieval.query_vectors import SIZE, query_vector


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.extend(texts)
        return [[float(len(t)), 1.0] for t in texts]


def test_the_same_query_is_embedded_once_and_the_cache_stays_small() -> None:
    embedder = Counting()
    first = query_vector(embedder, "where do I go kayaking?")  # type: ignore[arg-type]
    again = query_vector(embedder, "where do I go kayaking?")  # type: ignore[arg-type]
    assert first == again and embedder.calls == ["where do I go kayaking?"]
    other = Counting()  # another embedder never gets this one's vectors
    query_vector(other, "where do I go kayaking?")  # type: ignore[arg-type]
    assert other.calls == ["where do I go kayaking?"]
    for i in range(SIZE + 1):
        query_vector(embedder, f"query {i}")  # type: ignore[arg-type]
    query_vector(embedder, "where do I go kayaking?")  # type: ignore[arg-type]
    assert embedder.calls.count("where do I go kayaking?") == 2  # evicted, embedded again
