"""Continuous batching: many requests decoded together, one forward pass per step.

A :class:`BatchScheduler` owns one decode loop, run by a worker thread while there is
work. Requests queue up; between two decode steps the loop admits those waiting (up to
``max_batch`` rows), prefills them in one left-padded forward pass, and merges their KV
caches into the running batch's. Each step then feeds every row its last token: the
attention mask hides each row's padding and ``position_ids`` count only its real tokens,
so a row sees exactly what it would see alone. Rows may use different LoRA adapters: peft's
mixed-adapter batches route each row through its own (``adapters.decoding``). Each row
samples with its own settings and generator, streams to its own consumer, and leaves the
batch when it ends, is cancelled, or its consumer goes away.

Thread-safety: a consumer holds its slot of the engine's gate from before it is queued
until the loop has let its row go (:meth:`BatchScheduler.generate`), so every forward
pass runs for rows whose slots are held, and loading an adapter (which waits for all
slots) never changes the model under a running step.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from adapters.decoding import Sampling, choose_token, seeded_generator, using_adapters
from adapters.streaming import GenerationChunk, ReplyBuilder

logger = logging.getLogger(__name__)

_POLL_S = 0.05
"""How often a waiting consumer looks at its cancel event."""


@dataclass(eq=False)
class _Row:
    """One request in the scheduler, from queued to let go."""

    prompt_ids: list[int]
    adapter: str
    sampling: Sampling
    cancel: threading.Event
    reply: ReplyBuilder
    generator: torch.Generator
    out: queue.SimpleQueue[GenerationChunk | BaseException] = field(
        default_factory=queue.SimpleQueue
    )
    abandoned: bool = False
    """Set by the consumer when it stops listening (closed, cancelled or done)."""
    released: threading.Event = field(default_factory=threading.Event)
    """Set by the loop once no forward pass will include this row again."""
    last_token: int = 0

    @property
    def gone(self) -> bool:
        """Whether nobody waits for this row's tokens any more."""
        return self.abandoned or self.cancel.is_set()


@dataclass(eq=False)
class _Batch:
    """The running rows and their KV cache: row ``i`` is batch index ``i``."""

    rows: list[_Row] = field(default_factory=list)
    cache: DynamicCache | None = None
    mask: torch.Tensor | None = None
    """``(rows, cached positions)``: 1 for a real token, 0 for left padding."""


def _left_pad(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    """Pad ``tensor`` with zeros at the start of dimension ``dim`` up to ``length``."""
    missing = length - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [missing, 0]
    return F.pad(tensor, pad)


def _kv_layers(cache: DynamicCache) -> list[DynamicLayer]:
    """The cache's layers, each holding keys and values ``(rows, heads, positions, dim)``.

    Raises:
        TypeError: A layer is not a plain full-attention one (a sliding window, say),
            whose positions could not be padded or dropped freely.
    """
    layers: list[DynamicLayer] = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer or layer.keys is None or layer.values is None:
            raise TypeError(f"cannot batch over a {type(layer).__name__} cache layer")
        layers.append(layer)
    return layers


def _kv(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    """A filled layer's keys and values."""
    assert layer.keys is not None and layer.values is not None
    return layer.keys, layer.values


def _map_kv(cache: DynamicCache, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Replace every layer's keys and values by ``change`` of them."""
    for layer in _kv_layers(cache):
        keys, values = _kv(layer)
        layer.keys, layer.values = change(keys), change(values)


class BatchScheduler:
    """Decodes up to ``max_batch`` requests at once, admitting new ones between steps."""

    def __init__(
        self,
        model: torch.nn.Module,
        decode_text: Callable[[list[int]], str],
        *,
        eos_ids: Collection[int],
        max_batch: int,
        pad_id: int = 0,
    ) -> None:
        """Schedule decodes on ``model``; most callers want :class:`LocalEngine`.

        Args:
            model: A causal LM (LoRA layers hooked with ``hook_lora_layers``, if any).
            decode_text: Token ids to text, special tokens skipped.
            eos_ids: Tokens that end a reply.
            max_batch: Most rows decoded together.
            pad_id: Token fed at padded positions (masked, so any id does).
        """
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.model = model
        self._decode_text = decode_text
        self._eos_ids = eos_ids
        self.max_batch = max_batch
        self._pad_id = pad_id
        self._device = next(model.parameters()).device
        self._cond = threading.Condition()
        self._pending: list[_Row] = []
        self._worker: threading.Thread | None = None
        self.steps = 0
        """Decode steps run so far (prefills not counted)."""
        self.rows_stepped = 0
        """Rows summed over those steps: ``rows_stepped / steps`` is the mean batch."""
        self.largest_batch = 0
        """The most rows one step has decoded."""

    def generate(
        self,
        prompt_ids: list[int],
        *,
        adapter: str,
        sampling: Sampling,
        cancel: threading.Event,
    ) -> Iterator[GenerationChunk]:
        """Queue a request on the first ``next()`` and stream its reply.

        The caller should hold its gate slot around the whole iteration: the iterator
        returns (even when closed early) only once the loop has let the row go.

        Args:
            prompt_ids: The templated prompt.
            adapter: peft's adapter name for this row (``__base__`` for none).
            sampling: The request's sampling settings.
            cancel: When set, the row leaves the batch and the iterator ends at once,
                without a final chunk.

        Yields:
            Non-empty text pieces, then a chunk with usage and finish reason.
        """
        row = _Row(
            prompt_ids=prompt_ids,
            adapter=adapter,
            sampling=sampling,
            cancel=cancel,
            reply=ReplyBuilder(
                self._decode_text,
                prompt_tokens=len(prompt_ids),
                max_new_tokens=sampling.max_new_tokens,
                stop=sampling.stop,
                eos_ids=self._eos_ids,
                ignore_eos=sampling.ignore_eos,
            ),
            generator=seeded_generator(sampling.seed, self._device),
        )
        with self._cond:
            self._pending.append(row)
            if self._worker is None:
                # Not a daemon: it ends once idle, and must not die inside torch at exit.
                self._worker = threading.Thread(target=self._run, name="attune-batch")
                self._worker.start()
        try:
            while not cancel.is_set():
                try:
                    item = row.out.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if cancel.is_set():
                    return
                yield item
                if item.usage is not None:
                    return
        finally:
            row.abandoned = True
            row.released.wait()

    # -- the loop (worker thread) -------------------------------------------------------

    def _run(self) -> None:
        """Admit, step and retire rows until none run and none wait; then end."""
        batch = _Batch()
        while True:
            with self._cond:
                if not batch.rows and not self._pending:
                    self._worker = None
                    return
                room = self.max_batch - len(batch.rows)
                admitted, self._pending = self._pending[:room], self._pending[room:]
            try:
                with torch.inference_mode():
                    self._retire(batch, [row for row in batch.rows if row.gone])
                    self._admit(batch, admitted)
                    if batch.rows:
                        self._step(batch)
            except Exception as exc:  # handed to every consumer, who re-raises it
                logger.exception("batched decode failed")
                for row in [*batch.rows, *admitted]:
                    row.out.put(exc)
                    row.released.set()
                batch = _Batch()

    def _admit(self, batch: _Batch, rows: list[_Row]) -> None:
        """Prefill new rows together, sample their first tokens, merge them in."""
        live: list[_Row] = []
        for row in rows:
            if row.gone or row.reply.done:  # cancelled while queued, or max_new_tokens=0
                self._finish(row)
            else:
                live.append(row)
        if not live:
            return
        length = max(len(row.prompt_ids) for row in live)
        ids = torch.full((len(live), length), self._pad_id, dtype=torch.long)  # (new, P)
        mask = torch.zeros((len(live), length), dtype=torch.long)  # (new, P)
        for i, row in enumerate(live):
            ids[i, length - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            mask[i, length - len(row.prompt_ids) :] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # (new, P): real tokens from 0
        with using_adapters([row.adapter for row in live]):
            out = self.model(
                input_ids=ids,
                attention_mask=None if bool(mask.all()) else mask,  # as in _step
                position_ids=positions,
                cache=None,
                use_cache=True,
                logits_to_keep=1,
            )
        cache: DynamicCache = out.cache
        hidden = mask[:, None, :, None] == 0  # (new, 1, P, 1)
        # Padded positions hold garbage (NaN where a query saw no key at all); zeroed, they
        # can never leak into a real row through a zero attention weight.
        _map_kv(cache, lambda kv: kv.masked_fill(hidden, 0.0))
        new = _Batch(rows=live, cache=cache, mask=mask)
        self._merge(batch, new)
        self._sample(batch, out.logits[:, -1], first=len(batch.rows) - len(live))

    def _step(self, batch: _Batch) -> None:
        """One forward pass over every row's last token; sample each row's next one."""
        assert batch.cache is not None and batch.mask is not None
        count = len(batch.rows)
        ids = torch.tensor([[row.last_token] for row in batch.rows], device=self._device)
        positions = batch.mask.sum(dim=1, keepdim=True)  # (rows, 1): real tokens so far
        batch.mask = F.pad(batch.mask, (0, 1), value=1)  # (rows, T + 1)
        # Without padding (a batch of one, say) no mask is needed: the model's faster path.
        padded = not bool(batch.mask.all())
        with using_adapters([row.adapter for row in batch.rows]):
            out = self.model(
                input_ids=ids,  # (rows, 1)
                attention_mask=batch.mask if padded else None,
                position_ids=positions,
                cache=batch.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        self.steps += 1
        self.rows_stepped += count
        self.largest_batch = max(self.largest_batch, count)
        self._sample(batch, out.logits[:, -1], first=0)

    def _sample(self, batch: _Batch, logits: torch.Tensor, *, first: int) -> None:
        """Choose a token for rows ``first:`` from ``logits`` (one row each); stream it.

        Args:
            batch: The running batch.
            logits: ``(rows - first, vocab)`` scores at each row's last position.
            first: The batch index of ``logits[0]``.
        """
        greedy = logits.argmax(dim=-1).tolist()  # same pick as choose_token at 0 temperature
        ended: list[_Row] = []
        for offset, row in enumerate(batch.rows[first:]):
            if row.sampling.temperature <= 0:
                token = int(greedy[offset])
            else:
                token = choose_token(
                    logits[offset],  # (vocab,)
                    temperature=row.sampling.temperature,
                    top_p=row.sampling.top_p,
                    generator=row.generator,
                )
            row.last_token = token
            text = row.reply.push(token)
            if text:
                row.out.put(GenerationChunk(text))
            if row.reply.done:
                ended.append(row)
        self._retire(batch, ended)

    def _retire(self, batch: _Batch, rows: list[_Row]) -> None:
        """Drop ``rows`` from the batch and its cache, then finish them."""
        if not rows:
            return
        leaving = set(map(id, rows))
        keep = [i for i, row in enumerate(batch.rows) if id(row) not in leaving]
        batch.rows = [batch.rows[i] for i in keep]
        if not keep:
            batch.cache, batch.mask = None, None
        else:
            assert batch.cache is not None and batch.mask is not None
            index = torch.tensor(keep, device=self._device)
            mask = batch.mask[index]  # (kept, T)
            # Columns that are padding in every kept row are dropped, to keep steps short.
            start = int(mask.any(dim=0).to(torch.int8).argmax().item())
            batch.mask = mask[:, start:]
            _map_kv(batch.cache, lambda kv: kv[index, :, start:])
        for row in rows:
            self._finish(row)

    def _finish(self, row: _Row) -> None:
        """Send a finished row's last chunk (unless nobody listens) and let it go."""
        if not row.gone:
            row.out.put(row.reply.final())
        row.released.set()

    @staticmethod
    def _merge(batch: _Batch, new: _Batch) -> None:
        """Append ``new``'s rows to ``batch``, left-padding the shorter cache to match."""
        if batch.cache is None or batch.mask is None:
            batch.rows, batch.cache, batch.mask = new.rows, new.cache, new.mask
            return
        assert new.cache is not None and new.mask is not None
        length = max(batch.mask.shape[1], new.mask.shape[1])
        pairs = zip(_kv_layers(batch.cache), _kv_layers(new.cache), strict=True)
        for layer, new_layer in pairs:
            (keys, values), (new_keys, new_values) = _kv(layer), _kv(new_layer)
            layer.keys = torch.cat([_left_pad(keys, length, 2), _left_pad(new_keys, length, 2)])
            layer.values = torch.cat(
                [_left_pad(values, length, 2), _left_pad(new_values, length, 2)]
            )
        batch.mask = torch.cat([_left_pad(batch.mask, length, 1), _left_pad(new.mask, length, 1)])
        batch.rows = [*batch.rows, *new.rows]
