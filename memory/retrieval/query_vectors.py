"""The query's vector, embedded once per turn.

A turn searches twice with the same message (``recall``, then ``known_about`` for the
user's facts and preferences). The embedding is the slowest part of a search on CPU, so the
last few queries' vectors are kept, per embedder. The cache is tiny: it serves one turn's
searches, and holds no more text than the turns running now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from memory.retrieval.protocols import Embedder

SIZE = 8
"""Queries kept: a few concurrent turns' worth."""

_lock = threading.Lock()
_cache: OrderedDict[tuple[int, str], list[float]] = OrderedDict()


def query_vector(embedder: Embedder, query: str) -> list[float]:
    """``embedder``'s vector for ``query``, embedded once while it is among the last few."""
    key = (id(embedder), query)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    vector = embedder.embed([query])[0]
    with _lock:
        _cache[key] = vector
        while len(_cache) > SIZE:
            _cache.popitem(last=False)
    return vector
