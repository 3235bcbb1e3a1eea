"""The local backend on the real model (SmolLM2-135M-Instruct, converted once and cached)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from peft import PeftModel
from transformers import AutoModelForCausalLM, GenerationMixin

from adapters.backend import LocalBackend
from adapters.engine import LocalEngine
from adapters.errors import AdapterNotFoundError
from adapters.local import LocalChatModel
from adapters.model_store import MARKER_FILE, ensure_base_model
from adapters.streaming import GenerationResult
from evals.bench.loras import random_lora

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".attune" / "models"
ADAPTER = "tester"
MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]
MAX_TOKENS = 12


@pytest.fixture(scope="session")
def model_dir() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield ensure_base_model(CACHE_DIR)


@pytest.fixture(scope="module")
def adapters_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding one random (non-identity) LoRA adapter named ``tester``."""
    root = tmp_path_factory.mktemp("adapters")
    random_lora(model_dir, root / ADAPTER, seed=0)
    return root


@pytest.fixture(scope="module")
def engine(model_dir: Path, adapters_dir: Path) -> Iterator[LocalEngine]:
    # One intra-op thread per decode: on two shared cores, two threads per decode are no
    # faster alone and several times slower beside another busy process.
    threads = torch.get_num_threads()
    yield LocalEngine.load(model_dir, adapters_dir=adapters_dir, max_concurrency=2, torch_threads=1)
    torch.set_num_threads(threads)


# The assertions below must hold whatever the model writes: replies that need a length are
# generated with ``ignore_eos`` (always MAX_TOKENS tokens), and replies are compared with
# other generations of the same model, never with expected text.


@pytest.fixture(scope="module")
def base_reply(engine: LocalEngine) -> GenerationResult:
    """The greedy base-model reply to ``MESSAGES``, MAX_TOKENS long, computed once."""
    return engine.generate(MESSAGES, max_new_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)


@pytest.fixture(scope="module")
def greedy_reply(engine: LocalEngine) -> GenerationResult:
    """The greedy base-model reply, ended by EOS or MAX_TOKENS, as a client gets it."""
    return engine.generate(MESSAGES, max_new_tokens=MAX_TOKENS, temperature=0)


@pytest.fixture(scope="module")
def adapter_reply(engine: LocalEngine) -> GenerationResult:
    return engine.generate(
        MESSAGES, adapter=ADAPTER, max_new_tokens=MAX_TOKENS, temperature=0, ignore_eos=True
    )


def test_conversion_cache_is_reused(model_dir: Path):
    started = time.perf_counter()
    again = ensure_base_model(CACHE_DIR)
    assert time.perf_counter() - started < 1.0
    assert again == model_dir
    assert (model_dir / MARKER_FILE).is_file()
    assert (model_dir / "model.safetensors").is_file()
    assert not list(CACHE_DIR.glob(".*.tmp"))  # no unfinished conversion left behind


def test_greedy_is_deterministic_and_respects_max_tokens(
    engine: LocalEngine, base_reply: GenerationResult
):
    assert base_reply.finish_reason == "length"
    assert base_reply.usage.completion_tokens == MAX_TOKENS
    again = engine.generate(MESSAGES, max_new_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    assert again == base_reply


def test_eos_ends_a_reply_early_unless_ignored(
    greedy_reply: GenerationResult, base_reply: GenerationResult
):
    tokens = greedy_reply.usage.completion_tokens
    # Ended by EOS ("stop", fewer tokens) or by the limit ("length"), whichever came first;
    # up to that point it is the same greedy decode as the one that ignores EOS.
    assert greedy_reply.finish_reason == ("length" if tokens == MAX_TOKENS else "stop")
    assert base_reply.text.startswith(greedy_reply.text)


def test_greedy_matches_plain_generate(
    engine: LocalEngine, model_dir: Path, greedy_reply: GenerationResult
):
    plain = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert isinstance(plain, GenerationMixin)
    prompt = engine.encode_chat(MESSAGES)
    with torch.inference_mode():
        out = plain.generate(torch.tensor([prompt]), max_new_tokens=MAX_TOKENS, do_sample=False)
    assert isinstance(out, torch.Tensor)
    expected = engine.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True)
    assert greedy_reply.text == expected


def test_seeded_sampling_is_reproducible(engine: LocalEngine):
    def sample(seed: int) -> str:
        return engine.generate(
            MESSAGES, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=seed
        ).text

    assert sample(7) == sample(7)


def a_stop_string(text: str) -> str:
    """Two characters from the middle of ``text`` (MAX_TOKENS forced tokens give some)."""
    assert len(text) >= 2, f"{MAX_TOKENS} tokens decoded to {text!r}"
    middle = len(text) // 2
    return text[middle : middle + 2]


def test_stop_string_cuts_the_reply_and_ends_early(
    engine: LocalEngine, base_reply: GenerationResult
):
    stop = a_stop_string(base_reply.text)
    cut = engine.generate(
        MESSAGES, max_new_tokens=MAX_TOKENS, temperature=0, stop=[stop], ignore_eos=True
    )
    assert cut.text == base_reply.text[: base_reply.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < base_reply.usage.completion_tokens


def test_streaming_yields_pieces_that_join_to_the_reply(
    engine: LocalEngine, base_reply: GenerationResult
):
    chunks = list(
        engine.stream(MESSAGES, max_new_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    )
    *pieces, last = chunks
    assert len(pieces) <= MAX_TOKENS
    assert all(piece.text and piece.usage is None for piece in pieces)
    assert last.usage == base_reply.usage
    assert last.finish_reason == "length"
    assert "".join(c.text for c in chunks) == base_reply.text


def test_usage_counts(engine: LocalEngine, base_reply: GenerationResult):
    usage = base_reply.usage
    assert usage.prompt_tokens == len(engine.encode_chat(MESSAGES))
    assert usage.completion_tokens == MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + MAX_TOKENS
    # Re-tokenizing the text may merge or split a token or two (and skips special tokens).
    assert engine.count_tokens(base_reply.text) <= MAX_TOKENS + 2
    assert engine.count_tokens("one two three") == len(engine.tokenizer.encode("one two three"))


def test_adapter_generates_as_peft_does_and_changes_the_logits(
    engine: LocalEngine, model_dir: Path, adapters_dir: Path
):
    reply = engine.generate(MESSAGES, adapter=ADAPTER, max_new_tokens=MAX_TOKENS, temperature=0)
    assert engine.adapter_names() >= {ADAPTER}
    assert engine.has_adapter(ADAPTER)
    plain = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tuned = PeftModel.from_pretrained(plain, str(adapters_dir / ADAPTER))
    prompt = engine.encode_chat(MESSAGES)
    inputs = torch.tensor([prompt])
    with torch.inference_mode():
        out = tuned.generate(  # type: ignore[no-untyped-call]
            inputs, max_new_tokens=MAX_TOKENS, do_sample=False
        )
        adapted = tuned(inputs).logits[0, -1]  # (vocab,)
        with tuned.disable_adapter():
            base = tuned(inputs).logits[0, -1]
    assert reply.text == engine.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True)
    assert not torch.allclose(adapted, base)  # random, non-identity LoRA weights


async def test_interleaved_requests_do_not_leak_adapters(
    engine: LocalEngine, base_reply: GenerationResult, adapter_reply: GenerationResult
):
    alone = {None: base_reply.text, ADAPTER: adapter_reply.text}
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, engine.active_generations)
            await asyncio.sleep(0.005)

    async def run(adapter: str | None) -> str:
        pieces = [
            chunk.text
            async for chunk in engine.astream(
                MESSAGES,
                adapter=adapter,
                max_new_tokens=MAX_TOKENS,
                temperature=0,
                ignore_eos=True,
            )
        ]
        return "".join(pieces)

    watcher = asyncio.create_task(watch())
    order = [None, ADAPTER, None, ADAPTER]
    results = await asyncio.gather(*(run(name) for name in order))
    watcher.cancel()
    assert results == [alone[name] for name in order]
    assert peak == len(order)  # they did run side by side (in one batch)


async def test_cancelling_the_consumer_stops_the_decode(engine: LocalEngine):
    stream = engine.astream(MESSAGES, max_new_tokens=200, temperature=0, ignore_eos=True)
    first = await anext(stream)
    assert first.text
    await stream.aclose()

    def wait_idle() -> int:
        deadline = time.perf_counter() + 2.0
        while engine.active_generations and time.perf_counter() < deadline:
            time.sleep(0.01)
        return engine.active_generations

    assert await asyncio.to_thread(wait_idle) == 0


def test_unknown_adapter_raises(engine: LocalEngine):
    assert not engine.has_adapter("nope")
    assert not engine.has_adapter("../" + ADAPTER)
    with pytest.raises(AdapterNotFoundError) as info:
        engine.stream(MESSAGES, adapter="nope")
    assert info.value.name == "nope"
    with pytest.raises(AdapterNotFoundError):
        engine.load_adapter("../" + ADAPTER)
    backend = LocalBackend(engine)
    with pytest.raises(AdapterNotFoundError):
        backend.chat_model(adapter="nope", max_tokens=8, temperature=0)


async def test_async_unknown_adapter_raises(engine: LocalEngine):
    with pytest.raises(AdapterNotFoundError):
        async for _ in engine.astream(MESSAGES, adapter="nope"):
            pass


class TokenRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_chat_model_invoke_and_stream(engine: LocalEngine):
    chat = LocalChatModel(
        engine=engine, adapter=ADAPTER, max_tokens=8, temperature=0, ignore_eos=True
    )
    messages = [SystemMessage("You are terse."), HumanMessage("Say hello.")]
    recorder = TokenRecorder()
    chunks = list(chat.stream(messages, config={"callbacks": [recorder]}))
    assert chunks
    streamed = "".join(str(chunk.content) for chunk in chunks)
    assert recorder.tokens and "".join(recorder.tokens) == streamed

    reply = chat.invoke(messages)
    assert isinstance(reply, AIMessage)
    assert reply.content == streamed
    assert reply.usage_metadata is not None
    prompt = engine.encode_chat(
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
    )
    assert reply.usage_metadata["input_tokens"] == len(prompt)
    assert reply.usage_metadata["output_tokens"] == 8
    assert (
        reply.usage_metadata["total_tokens"] == len(prompt) + reply.usage_metadata["output_tokens"]
    )
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.response_metadata["adapter"] == ADAPTER
    assert chat._llm_type == "attune-local"


async def test_chat_model_async_with_call_time_stop(
    engine: LocalEngine, base_reply: GenerationResult
):
    chat = LocalChatModel(
        engine=engine, max_tokens=MAX_TOKENS, temperature=0, stop=["\u2603"], ignore_eos=True
    )
    question = [HumanMessage(MESSAGES[0]["content"])]
    chunks = [chunk async for chunk in chat.astream(question)]
    assert "".join(str(chunk.content) for chunk in chunks) == base_reply.text
    assert chunks[-1].response_metadata["finish_reason"] == "length"

    stop = a_stop_string(base_reply.text)
    cut = await chat.ainvoke(question, stop=[stop])
    assert cut.content == base_reply.text[: base_reply.text.index(stop)]
    assert cut.response_metadata["finish_reason"] == "stop"
