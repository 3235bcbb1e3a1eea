"""The ChatBackend contract, run on every implementation.

To add an implementation, add a builder to ``BUILDERS``: it gets the converted model
directory and an empty adapters directory, and returns a ready backend; one that needs a
server names its fixture in ``SERVERS`` and gets its URL too (the ``vllm`` builder runs on
the real vLLM server of ``tests.vllm_server``, started once per session). The scripted
fake the unit tests use (``tests.fakes.ScriptedBackend``) runs here too, so it cannot drift
from the real backends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from adapters.backend import ChatBackend, LocalBackend
from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError
from adapters.model_store import ensure_base_model
from adapters.vllm_backend import VllmBackend
from tests.fakes import ScriptedBackend

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".attune" / "models"
MESSAGES = [HumanMessage("Say hello in one word.")]


def build_local(model_dir: Path, adapters_dir: Path) -> ChatBackend:
    settings = ModelSettings(
        backend="local",
        base_model_dir=model_dir,
        adapters_dir=adapters_dir,
        max_concurrency=2,
        torch_threads=1,  # faster than two on two shared cores
    )
    return LocalBackend.from_settings(settings)


def build_scripted(model_dir: Path, adapters_dir: Path) -> ChatBackend:
    return ScriptedBackend()


def build_vllm(model_dir: Path, adapters_dir: Path, url: str = "") -> ChatBackend:
    settings = ModelSettings(
        backend="vllm", vllm_urls=url, base_model_dir=model_dir, adapters_dir=adapters_dir
    )
    return VllmBackend.from_settings(settings)


BUILDERS: dict[str, Callable[..., ChatBackend]] = {
    "local": build_local,
    "scripted": build_scripted,
    "vllm": build_vllm,
}
SERVERS: dict[str, str] = {"vllm": "vllm_url"}
"""Builders that need a server: the fixture giving its URL."""


@pytest.fixture(scope="session")
def model_dir() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield ensure_base_model(CACHE_DIR)


@pytest.fixture(scope="session")
def lora_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LoRA adapter for the base model, outside every backend's adapters dir."""
    target = tmp_path_factory.mktemp("published") / "contract-lora"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(target))
    return target


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=[pytest.mark.vllm] if name == "vllm" else [])
        for name in sorted(BUILDERS)
    ],
)
def backend(
    request: pytest.FixtureRequest, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatBackend]:
    threads = torch.get_num_threads()  # a builder may change this process-wide setting
    server = SERVERS.get(request.param)
    extra = [request.getfixturevalue(server)] if server else []
    yield BUILDERS[request.param](model_dir, tmp_path_factory.mktemp("adapters"), *extra)
    torch.set_num_threads(threads)


def test_identifies_itself(backend: ChatBackend):
    assert isinstance(backend, ChatBackend)
    assert backend.name and isinstance(backend.name, str)
    assert backend.model_id and isinstance(backend.model_id, str)


def test_counts_tokens(backend: ChatBackend):
    short = backend.count_tokens("hello")
    long = backend.count_tokens("hello there, how are you doing today?")
    assert 0 < short < long


def test_unknown_adapter(backend: ChatBackend):
    assert backend.has_adapter("no-such-adapter") is False
    # A backend may refuse when building the model or when it generates.
    with pytest.raises(AdapterNotFoundError):
        backend.chat_model(adapter="no-such-adapter", max_tokens=4, temperature=0).invoke(MESSAGES)


def test_chat_model_streams_with_usage_last(backend: ChatBackend):
    chat = backend.chat_model(adapter=None, max_tokens=8, temperature=0)
    assert isinstance(chat, BaseChatModel)
    chunks = list(chat.stream(MESSAGES))
    assert chunks and all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total.content, str)  # an EOS first leaves it empty, yet it counts
    assert total.usage_metadata is not None
    assert 0 < total.usage_metadata["output_tokens"] <= 8
    assert total.usage_metadata["input_tokens"] > 0
    assert total.response_metadata["finish_reason"] in {"stop", "length"}


def test_chat_model_invokes_greedily_and_honours_stop(backend: ChatBackend):
    # ignore_eos: 8 tokens whatever the model writes, so there is text to cut.
    chat = backend.chat_model(adapter=None, max_tokens=8, temperature=0, ignore_eos=True)
    reply = chat.invoke(MESSAGES)
    assert isinstance(reply, AIMessage)
    text = str(reply.content)
    assert chat.invoke(MESSAGES).content == text
    assert len(text) >= 2, f"8 tokens decoded to {text!r}"
    stop = text[len(text) // 2 :][:2]
    stopped = backend.chat_model(
        adapter=None, max_tokens=8, temperature=0, stop=[stop], ignore_eos=True
    )
    assert str(stopped.invoke(MESSAGES).content) == text[: text.index(stop)]


async def test_chat_model_streams_async(backend: ChatBackend):
    chat = backend.chat_model(adapter=None, max_tokens=8, temperature=0, seed=1)
    pieces = [chunk async for chunk in chat.astream(MESSAGES)]
    assert pieces
    assert pieces[-1].usage_metadata is not None
    assert "".join(str(piece.content) for piece in pieces)


def test_publish_serves_an_adapter_until_unpublished(backend: ChatBackend, lora_dir: Path):
    name = "contract-lora"
    assert backend.has_adapter(name) is False
    backend.publish(name, lora_dir)
    backend.publish(name, lora_dir)  # publishing again changes nothing
    assert backend.has_adapter(name) is True
    reply = backend.chat_model(adapter=name, max_tokens=4, temperature=0).invoke(MESSAGES)
    assert isinstance(reply, AIMessage)
    assert backend.unpublish(name) is True
    assert backend.unpublish(name) is False
    # Published from outside the adapters directory: the backend cannot find it by name.
    assert backend.has_adapter(name) is False
    with pytest.raises(AdapterNotFoundError):
        backend.chat_model(adapter=name, max_tokens=4, temperature=0).invoke(MESSAGES)


def test_publish_refuses_a_directory_without_an_adapter(backend: ChatBackend, tmp_path: Path):
    empty = tmp_path / "not-an-adapter"
    empty.mkdir()
    with pytest.raises(AdapterNotFoundError):
        backend.publish("not-an-adapter", empty)
    assert backend.has_adapter("not-an-adapter") is False
    assert backend.unpublish("never-published") is False
