"""In-process generation with transformers + peft: one model, many LoRA adapters.

A :class:`LocalEngine` is built once per process (at an entry point, never at import)
and shared by every request. Each request names its adapter (or none, for the base
model) and gets exactly that model, whatever other requests run beside it (see
``adapters.decoding`` for how). Decoding is a plain loop over the model's forward pass
with a KV cache, so sampling uses a per-request :class:`torch.Generator` (a ``seed``
reproduces a reply even beside other requests) and stop strings, cancellation and
streaming are checked between tokens. With ``max_batch`` above 1, requests generate
together, one forward pass per step for the whole batch (``adapters.batching``); with
``max_batch=1`` each request decodes alone in its caller's thread, ``max_concurrency`` at
once. A gate admits that many requests (``max_batch`` rows, or ``max_concurrency``
decodes); loading or unloading an adapter (which changes modules) waits until no request
runs; an adapter serves only while its files are on disk (``adapters.loaded_adapters``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from adapters.batching import BatchScheduler
from adapters.decoding import Sampling, decode
from adapters.errors import ModelNotFoundError
from adapters.generation_gate import Cancelled, GenerationGate
from adapters.loaded_adapters import LoadedAdapters
from adapters.model_store import model_id_for
from adapters.streaming import GenerationChunk, GenerationResult

logger = logging.getLogger(__name__)


def pick_device(device: str) -> torch.device:
    """Resolve ``auto`` to CUDA when present, else the CPU.

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` (any torch device string works).

    Returns:
        The torch device to run on.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LocalEngine:
    """A tokenizer and a causal LM with lazily loaded LoRA adapters, shared by requests.

    Thread-safe: any number of threads may call :meth:`stream`, :meth:`generate` and
    :meth:`astream` at once; at most ``max_batch`` generate together in one batch (or,
    with ``max_batch=1``, ``max_concurrency`` decode side by side, each alone).
    """

    def __init__(
        self,
        *,
        tokenizer: Any,
        model: PreTrainedModel,
        model_id: str,
        adapters_dir: Path | None,
        max_concurrency: int,
        max_batch: int = 32,
    ) -> None:
        """Wrap an already loaded tokenizer and model; most callers want :meth:`load`."""
        self.tokenizer = tokenizer
        self.model = model
        self.model_id = model_id
        self.adapters_dir = adapters_dir
        self.device = model.device
        self.max_batch = max_batch
        self._gate = GenerationGate(max_batch if max_batch > 1 else max_concurrency)
        self.adapters = LoadedAdapters(model, adapters_dir, self._gate)
        self._eos_ids = self._collect_eos_ids()
        self.scheduler: BatchScheduler | None = None
        """The batch scheduler (its counters show how requests were batched); ``None``
        when ``max_batch`` is 1."""
        if max_batch > 1:
            pad_id = tokenizer.pad_token_id
            self.scheduler = BatchScheduler(
                model,
                self._decode_text,
                eos_ids=self._eos_ids,
                max_batch=max_batch,
                pad_id=pad_id if isinstance(pad_id, int) else 0,
            )

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        adapters_dir: Path | None,
        device: str = "auto",
        max_concurrency: int = 2,
        max_batch: int = 32,
        torch_threads: int | None = None,
    ) -> LocalEngine:
        """Load a tokenizer and model from a local directory (never from a hub).

        Args:
            model_dir: A Hugging Face model directory (config, weights, tokenizer).
            adapters_dir: Where adapters live, one sub-directory per name; ``None`` for
                none.
            device: ``auto``, ``cpu`` or ``cuda``.
            max_concurrency: Decodes that may run at once when ``max_batch`` is 1.
            max_batch: Most requests generated together in one batch; 1 decodes each
                request alone (the path before batching, kept as a baseline).
            torch_threads: Intra-op threads for torch (process-wide); ``None`` keeps
                torch's default.

        Returns:
            The engine, with the model in eval mode (float32 on the CPU).

        Raises:
            ModelNotFoundError: ``model_dir`` holds no ``config.json``.
        """
        if not (model_dir / "config.json").is_file():
            raise ModelNotFoundError(f"not a model directory (no config.json): {model_dir}")
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        target = pick_device(device)
        dtype = torch.float32 if target.type == "cpu" else torch.bfloat16
        started = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=dtype, device_map=target, local_files_only=True
        )
        model.train(False)
        logger.info("loaded %s on %s in %.2f s", model_dir, target, time.perf_counter() - started)
        return cls(
            tokenizer=tokenizer,
            model=model,
            model_id=model_id_for(model_dir),
            adapters_dir=adapters_dir,
            max_concurrency=max_concurrency,
            max_batch=max_batch,
        )

    # -- tokens -----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Count the tokens of plain text (no special tokens added)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Apply the chat template, ending with the assistant's turn opened.

        Args:
            messages: ``{"role": ..., "content": ...}`` dicts, oldest first.

        Returns:
            The prompt's token ids.
        """
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return [int(i) for i in ids]

    def _collect_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list | tuple):
                ids.update(int(i) for i in source)
        return frozenset(ids)

    # -- adapters ---------------------------------------------------------------------

    def adapter_names(self) -> set[str]:
        """Adapters available: those on disk under ``adapters_dir`` and those loaded."""
        return self.adapters.names()

    def has_adapter(self, name: str) -> bool:
        """Whether ``name`` is loaded or loadable with its files still on disk (never blocks)."""
        return self.adapters.has(name)

    def load_adapter(self, name: str, path: Path | None = None) -> None:
        """Load adapter ``name`` from ``path`` (default: ``adapters_dir / name``).

        See :meth:`LoadedAdapters.load`: waits for decodes, a no-op when already loaded,
        :class:`~adapters.errors.AdapterNotFoundError` when no adapter is there.
        """
        self.adapters.load(name, path)

    def unload_adapter(self, name: str) -> bool:
        """Drop a loaded adapter (waiting until no decode runs); whether it was loaded.

        A later request naming it loads it again only if its files are still on disk.
        """
        return self.adapters.unload(name)

    # -- generation -------------------------------------------------------------------

    @property
    def active_generations(self) -> int:
        """Requests generating now (queued for the batch or in it, or decoding alone)."""
        return self._gate.active

    def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        adapter: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        cancel: threading.Event | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[GenerationChunk]:
        """Generate a reply, yielding text as it is decoded.

        The adapter is resolved (and loaded) before this returns; decoding starts on the
        first ``next()`` and runs in the caller's thread.

        Args:
            messages: The conversation, as chat-template dicts.
            adapter: A LoRA adapter name, or ``None`` for the base model.
            max_new_tokens: Most tokens to sample.
            temperature: ``0`` decodes greedily.
            top_p: Nucleus sampling mass.
            seed: Makes sampling reproducible for this request.
            stop: Strings that end the reply; they and anything after them are never
                emitted.
            cancel: When set, decoding stops after the current token and the iterator
                ends without a final chunk.
            ignore_eos: Sample past end-of-sequence tokens (always ``max_new_tokens``).

        Returns:
            An iterator of chunks: text pieces, then one chunk with usage and finish
            reason.

        Raises:
            AdapterNotFoundError: ``adapter`` is unknown.
        """
        sampling = Sampling(max_new_tokens, temperature, top_p, seed, stop, ignore_eos)
        return self._start(messages, adapter, sampling, cancel or threading.Event())

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        *,
        adapter: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        ignore_eos: bool = False,
    ) -> GenerationResult:
        """Generate a whole reply; the arguments are those of :meth:`stream`."""
        sampling = Sampling(max_new_tokens, temperature, top_p, seed, stop, ignore_eos)
        pieces: list[str] = []
        for chunk in self._start(messages, adapter, sampling, threading.Event()):
            pieces.append(chunk.text)
            if chunk.usage is not None and chunk.finish_reason is not None:
                return GenerationResult("".join(pieces), chunk.usage, chunk.finish_reason)
        raise RuntimeError("the generation ended without a final chunk")

    async def astream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        adapter: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        ignore_eos: bool = False,
    ) -> AsyncGenerator[GenerationChunk, None]:
        """Async :meth:`stream`: decodes in a worker thread, never blocking the loop.

        Closing the iterator early or cancelling the consuming task stops the decode
        after its current token.

        Args:
            messages: The conversation, as chat-template dicts.
            adapter: A LoRA adapter name, or ``None`` for the base model.
            max_new_tokens: Most tokens to sample.
            temperature: ``0`` decodes greedily.
            top_p: Nucleus sampling mass.
            seed: Makes sampling reproducible for this request.
            stop: Strings that end the reply.
            ignore_eos: Sample past end-of-sequence tokens (always ``max_new_tokens``).

        Yields:
            Text pieces, then one chunk with usage and finish reason.

        Raises:
            AdapterNotFoundError: ``adapter`` is unknown.
        """
        sampling = Sampling(max_new_tokens, temperature, top_p, seed, stop, ignore_eos)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenerationChunk | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def hand_over(item: GenerationChunk | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                # Loading the adapter and templating happen here too, off the loop.
                for chunk in self._start(messages, adapter, sampling, cancel):
                    hand_over(chunk)
            except BaseException as exc:  # handed to the consumer, who re-raises it
                hand_over(exc)
            finally:
                hand_over(None)

        worker = threading.Thread(target=work, name="attune-generate", daemon=True)
        worker.start()
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def _start(
        self,
        messages: Sequence[dict[str, str]],
        adapter: str | None,
        sampling: Sampling,
        cancel: threading.Event,
    ) -> Iterator[GenerationChunk]:
        """Resolve the adapter and the prompt now; return the decode to iterate."""
        names = self.adapters.resolve(adapter)
        prompt_ids = self.encode_chat(messages)
        return self._decode(prompt_ids, names, sampling, cancel)

    def _decode(
        self,
        prompt_ids: list[int],
        names: list[str],
        sampling: Sampling,
        cancel: threading.Event,
    ) -> Iterator[GenerationChunk]:
        """Wait for a slot (or a cancel), then generate in it: batched, or alone."""
        try:
            with self._gate.slot(cancel):
                if self.scheduler is not None:
                    yield from self.scheduler.generate(
                        prompt_ids, adapter=names[0], sampling=sampling, cancel=cancel
                    )
                    return
                yield from decode(
                    self.model,
                    self._decode_text,
                    prompt_ids,
                    adapter_names=names,
                    eos_ids=self._eos_ids,
                    sampling=sampling,
                    cancel=cancel,
                )
        except Cancelled:
            return

    def _decode_text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))
