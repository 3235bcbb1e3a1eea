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
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, GenerationMixin

from adapters.backend import LocalBackend
from adapters.engine import LocalEngine
from adapters.errors import AdapterNotFoundError
from adapters.local import LocalChatModel
from adapters.model_store import MARKER_FILE, ensure_base_model

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".attune" / "models"
ADAPTER = "tester"
MESSAGES = [{"role": "user", "content": "Name three colours of the rainbow."}]


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
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(str(root / ADAPTER))
    return root


@pytest.fixture(scope="module")
def engine(model_dir: Path, adapters_dir: Path) -> LocalEngine:
    return LocalEngine.load(model_dir, adapters_dir=adapters_dir, max_concurrency=2)


def greedy(engine: LocalEngine, adapter: str | None = None, max_new_tokens: int = 12) -> str:
    return engine.generate(
        MESSAGES, adapter=adapter, max_new_tokens=max_new_tokens, temperature=0
    ).text


def test_conversion_cache_is_reused(model_dir: Path):
    started = time.perf_counter()
    again = ensure_base_model(CACHE_DIR)
    assert time.perf_counter() - started < 1.0
    assert again == model_dir
    assert (model_dir / MARKER_FILE).is_file()
    assert (model_dir / "model.safetensors").is_file()
    assert not list(CACHE_DIR.glob(".*.tmp"))  # no unfinished conversion left behind


def test_greedy_is_deterministic_and_respects_max_tokens(engine: LocalEngine):
    first = engine.generate(MESSAGES, max_new_tokens=10, temperature=0)
    second = engine.generate(MESSAGES, max_new_tokens=10, temperature=0)
    assert first == second
    assert first.text
    assert first.usage.completion_tokens <= 10
    if first.finish_reason == "length":
        assert first.usage.completion_tokens == 10


def test_greedy_matches_plain_generate(engine: LocalEngine, model_dir: Path):
    plain = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert isinstance(plain, GenerationMixin)
    prompt = engine.encode_chat(MESSAGES)
    with torch.inference_mode():
        # transformers 5 types generate() with a second, Protocol-typed self.
        out = plain.generate(  # type: ignore[misc]
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False
        )
    assert isinstance(out, torch.Tensor)
    expected = engine.tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True)
    assert greedy(engine) == expected


def test_seeded_sampling_is_reproducible(engine: LocalEngine):
    def sample(seed: int) -> str:
        return engine.generate(
            MESSAGES, max_new_tokens=12, temperature=1.0, top_p=0.95, seed=seed
        ).text

    assert sample(7) == sample(7)


def test_stop_string_cuts_the_reply_and_ends_early(engine: LocalEngine):
    full = engine.generate(MESSAGES, max_new_tokens=16, temperature=0)
    words = full.text.split(" ")
    assert len(words) > 3, full.text
    stop = " " + words[2]
    cut = engine.generate(MESSAGES, max_new_tokens=16, temperature=0, stop=[stop])
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens


def test_streaming_yields_pieces_that_join_to_the_reply(engine: LocalEngine):
    chunks = list(engine.stream(MESSAGES, max_new_tokens=12, temperature=0))
    *pieces, last = chunks
    assert len(pieces) > 1
    assert all(piece.text and piece.usage is None for piece in pieces)
    assert last.usage is not None
    assert last.finish_reason in {"stop", "length"}
    assert "".join(c.text for c in chunks) == greedy(engine)


def test_usage_counts(engine: LocalEngine):
    result = engine.generate(MESSAGES, max_new_tokens=8, temperature=0)
    assert result.usage.prompt_tokens == len(engine.encode_chat(MESSAGES))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 8
    assert result.usage.total_tokens == result.usage.prompt_tokens + 8
    assert engine.count_tokens(result.text) in range(6, 11)  # re-tokenizing may merge


def test_adapter_changes_greedy_output(engine: LocalEngine):
    assert engine.adapter_names() >= {ADAPTER}
    assert engine.has_adapter(ADAPTER)
    assert greedy(engine, ADAPTER) != greedy(engine)


async def test_interleaved_requests_do_not_leak_adapters(engine: LocalEngine):
    alone = {name: greedy(engine, name) for name in (None, ADAPTER)}
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
                MESSAGES, adapter=adapter, max_new_tokens=12, temperature=0
            )
        ]
        return "".join(pieces)

    watcher = asyncio.create_task(watch())
    order = [None, ADAPTER, None, ADAPTER]
    results = await asyncio.gather(*(run(name) for name in order))
    watcher.cancel()
    assert results == [alone[name] for name in order]
    assert peak == 2  # they did run side by side, and no more than max_concurrency


async def test_cancelling_the_consumer_stops_the_decode(engine: LocalEngine):
    stream = engine.astream(MESSAGES, max_new_tokens=200, temperature=0)
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
    chat = LocalChatModel(engine=engine, adapter=ADAPTER, max_tokens=10, temperature=0)
    messages = [SystemMessage("You are terse."), HumanMessage("Say hello.")]
    recorder = TokenRecorder()
    chunks = list(chat.stream(messages, config={"callbacks": [recorder]}))
    assert len(chunks) > 2
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
    assert 0 < reply.usage_metadata["output_tokens"] <= 10
    assert (
        reply.usage_metadata["total_tokens"] == len(prompt) + reply.usage_metadata["output_tokens"]
    )
    assert reply.response_metadata["finish_reason"] in {"stop", "length"}
    assert reply.response_metadata["adapter"] == ADAPTER
    assert chat._llm_type == "attune-local"


async def test_chat_model_async_with_call_time_stop(engine: LocalEngine):
    chat = LocalChatModel(engine=engine, max_tokens=16, temperature=0, stop=["\u2603"])
    full = await chat.ainvoke([HumanMessage(MESSAGES[0]["content"])])
    text = str(full.content)
    words = text.split(" ")
    assert len(words) > 3, text
    stop = " " + words[2]
    cut = await chat.ainvoke([HumanMessage(MESSAGES[0]["content"])], stop=[stop])
    assert cut.content == text[: text.index(stop)]
    assert cut.response_metadata["finish_reason"] == "stop"
    chunks = [c async for c in chat.astream([HumanMessage(MESSAGES[0]["content"])])]
    assert "".join(str(c.content) for c in chunks) == text
