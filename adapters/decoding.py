"""The token-by-token decode loop, sampling, and per-request adapter selection.

peft's mixed-adapter batch inference routes each LoRA layer through the adapters named in
an ``adapter_names`` forward argument (``"__base__"`` for none). peft's own
``generate(adapter_names=...)`` passes that argument through forward hooks it registers on
the shared modules for the duration of the call, so two concurrent calls see each other's
hooks and one request can run with another's adapter. Here one permanent hook per LoRA
layer (:func:`hook_lora_layers`) reads the names from a :class:`contextvars.ContextVar`
that :func:`decode` sets around each forward pass, so no state is shared between requests.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from peft.tuners.lora import LoraLayer
from peft.utils.other import AuxiliaryTrainingWrapper

from adapters.streaming import GenerationChunk, ReplyBuilder

BASE_ADAPTER = "__base__"
"""peft's name for "no adapter" in mixed-adapter batches."""

_adapter_names: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "attune_adapter_names", default=None
)


def _inject_adapter_names(
    module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Forward pre-hook: pass this context's adapter names to a LoRA layer."""
    names = _adapter_names.get()
    if names is not None:
        kwargs["adapter_names"] = names
    return args, kwargs


def hook_lora_layers(model: torch.nn.Module, hooked: set[int]) -> None:
    """Give every LoRA layer of ``model`` not yet in ``hooked`` the adapter-names hook.

    Args:
        model: A model with peft LoRA layers injected.
        hooked: Ids of modules already hooked; updated in place.
    """
    for module in model.modules():
        if isinstance(module, LoraLayer | AuxiliaryTrainingWrapper) and id(module) not in hooked:
            module.register_forward_pre_hook(_inject_adapter_names, with_kwargs=True)
            hooked.add(id(module))


def choose_token(
    logits: torch.Tensor, *, temperature: float, top_p: float, generator: torch.Generator
) -> int:
    """Pick the next token from the last position's logits.

    Args:
        logits: Scores over the vocabulary, shape ``(vocab,)``.
        temperature: ``0`` (or less) picks the most likely token; otherwise scales the
            logits before sampling.
        top_p: Samples only among the most likely tokens whose probabilities sum to
            ``top_p`` (nucleus sampling); ``1`` keeps all.
        generator: The request's random generator.

    Returns:
        The chosen token id.
    """
    if temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / temperature, dim=-1)  # (vocab,)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)  # (vocab,), (vocab,)
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs = sorted_probs * (mass_before < top_p)  # always keeps the first
        pick = torch.multinomial(sorted_probs, 1, generator=generator)  # (1,)
        return int(order[pick].item())
    return int(torch.multinomial(probs, 1, generator=generator).item())


@dataclass(frozen=True)
class Sampling:
    """How one request samples.

    Attributes:
        max_new_tokens: Most tokens to sample.
        temperature: ``0`` decodes greedily.
        top_p: Nucleus sampling mass.
        seed: Makes sampling reproducible for this request; ``None`` draws a fresh seed.
        stop: Strings that end the reply, never emitted themselves.
        ignore_eos: Keep sampling past end-of-sequence tokens, so the reply is always
            ``max_new_tokens`` long (unless a stop string ends it): for benchmarks and for
            tests whose assertions must hold whatever the model writes (vLLM's
            ``ignore_eos``).
    """

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] | None = None
    ignore_eos: bool = False


def seeded_generator(seed: int | None, device: torch.device) -> torch.Generator:
    """A request's random generator: seeded with ``seed``, or freshly when ``None``."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def using_adapters(names: list[str]) -> Iterator[None]:
    """Route the forward passes in this block through ``names``, one per batch row.

    Set around each forward pass, never across a ``yield``, so iterators interleaved in
    one thread cannot see each other's.
    """
    token = _adapter_names.set(names)
    try:
        yield
    finally:
        _adapter_names.reset(token)


def decode(
    model: torch.nn.Module,
    decode_text: Callable[[list[int]], str],
    prompt_ids: list[int],
    *,
    adapter_names: list[str],
    eos_ids: Collection[int],
    sampling: Sampling,
    cancel: threading.Event,
) -> Iterator[GenerationChunk]:
    """Generate from ``prompt_ids`` alone: one forward pass per token over a KV cache.

    The one-request-at-a-time path (``max_batch=1``); ``adapters.batching`` generates
    many requests in one batch.

    Args:
        model: A causal LM (LoRA layers hooked with :func:`hook_lora_layers`, if any).
        decode_text: Token ids to text, special tokens skipped.
        prompt_ids: The templated prompt.
        adapter_names: peft's ``adapter_names`` for a batch of one.
        eos_ids: Tokens that end the reply.
        sampling: Sampling settings.
        cancel: Checked before each token; when set, the iterator ends at once, without
            a final chunk.

    Yields:
        Non-empty text pieces, then a chunk with the held-back tail, usage and finish
        reason.
    """
    device = next(model.parameters()).device
    generator = seeded_generator(sampling.seed, device)
    reply = ReplyBuilder(
        decode_text,
        prompt_tokens=len(prompt_ids),
        max_new_tokens=sampling.max_new_tokens,
        stop=sampling.stop,
        eos_ids=eos_ids,
        ignore_eos=sampling.ignore_eos,
    )
    inputs = torch.tensor([prompt_ids], device=device)  # (1, prompt)
    cache: Any = None
    while not reply.done:
        if cancel.is_set():
            return
        with using_adapters(adapter_names), torch.inference_mode():
            out = model(input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1)
            cache = out.cache
            next_id = choose_token(
                out.logits[0, -1],  # (vocab,)
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                generator=generator,
            )
        text = reply.push(next_id)
        if text:
            yield GenerationChunk(text)
        inputs = torch.tensor([[next_id]], device=device)  # (1, 1)
    yield reply.final()
