"""Adapter files through an fsspec store: upload and removal, the replica's fetch, the plugin.

The store is fsspec's real local filesystem behind a ``file://`` URL in a temporary
directory. The replica side (``adapters.vllm_resolver.fetch``) runs here as it does inside
vLLM; fake replicas answer the fetch route with it, so the backend's publication through
a store is checked on several replicas without a server.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import fsspec
import httpx
import pytest

from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError
from adapters.vllm_backend import VllmBackend
from adapters.vllm_plugin import build_wheel
from adapters.vllm_replicas import Replica
from adapters.vllm_resolver import (
    FETCH_ROUTE,
    MANIFEST,
    PLUGIN,
    ResolverConfig,
    evict,
    fetch,
)
from adapters.vllm_server import server_env
from adapters.vllm_store import AdapterFiles, AdapterStore
from tests.unit.test_vllm_placement import FakeVllm


def adapter(root: Path, name: str, weights: bytes = b"w" * 64) -> Path:
    path = root / name
    (path / "nested").mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (path / "adapter_model.safetensors").write_bytes(weights)
    (path / "nested" / "tokenizer.json").write_text("{}")
    return path


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_dir: Path) -> AdapterStore:
    return AdapterStore(store_dir.as_uri())


def test_upload_copies_every_file_then_the_manifest(
    store: AdapterStore, store_dir: Path, tmp_path: Path
):
    source = adapter(tmp_path / "src", "usr_a-sft-v1")
    url = store.upload("usr_a-sft-v1", source)
    assert url == f"{store_dir.as_uri()}/usr_a-sft-v1"
    uploaded = store_dir / "usr_a-sft-v1"
    for rel in ("adapter_config.json", "adapter_model.safetensors", "nested/tokenizer.json"):
        assert (uploaded / rel).read_bytes() == (source / rel).read_bytes()
    manifest = json.loads((uploaded / MANIFEST).read_text())
    assert set(manifest["files"]) == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "nested/tokenizer.json",
    }
    assert manifest["files"]["adapter_model.safetensors"]["size"] == 64
    assert store.exists("usr_a-sft-v1")


def test_upload_again_changes_nothing_and_changed_files_replace_the_old(
    store: AdapterStore, store_dir: Path, tmp_path: Path
):
    source = adapter(tmp_path / "src", "usr_a-sft-v1")
    store.upload("usr_a-sft-v1", source)
    weights = store_dir / "usr_a-sft-v1" / "adapter_model.safetensors"
    before = weights.stat().st_mtime_ns
    store.upload("usr_a-sft-v1", source)
    assert weights.stat().st_mtime_ns == before

    (source / "nested" / "tokenizer.json").unlink()
    (source / "adapter_model.safetensors").write_bytes(b"v" * 32)
    store.upload("usr_a-sft-v1", source)
    assert weights.read_bytes() == b"v" * 32
    assert not (store_dir / "usr_a-sft-v1" / "nested" / "tokenizer.json").exists()


def test_nothing_is_uploaded_without_an_adapter_or_a_plain_name(
    store: AdapterStore, store_dir: Path, tmp_path: Path
):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterNotFoundError):
        store.upload("usr_a-sft-v1", tmp_path / "empty")
    for name in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(AdapterNotFoundError):
            store.upload(name, adapter(tmp_path / "src", "usr_b-sft-v1") if not name else tmp_path)
    assert not store_dir.exists() or not any(store_dir.iterdir())
    assert not store.exists("usr_a-sft-v1")


def test_remove_deletes_everything(store: AdapterStore, store_dir: Path, tmp_path: Path):
    store.upload("usr_a-sft-v1", adapter(tmp_path / "src", "usr_a-sft-v1"))
    store.upload("usr_b-sft-v1", adapter(tmp_path / "src", "usr_b-sft-v1"))
    assert store.remove("usr_a-sft-v1") is True
    assert not (store_dir / "usr_a-sft-v1").exists()
    assert store.remove("usr_a-sft-v1") is False
    assert not store.exists("usr_a-sft-v1")
    assert store.exists("usr_b-sft-v1")  # only that one
    assert store.remove("../store") is False


def test_an_in_memory_store_is_refused():
    with pytest.raises(ValueError, match="memory"):
        AdapterStore("memory://adapters")


def test_fetch_copies_an_intact_upload_and_nothing_else(store: AdapterStore, tmp_path: Path):
    source = adapter(tmp_path / "src", "usr_a-sft-v1")
    store.upload("usr_a-sft-v1", source)
    cache = tmp_path / "cache"
    fs, root = fsspec.core.url_to_fs(store.url)
    copy = fetch(fs, root, "usr_a-sft-v1", cache)
    assert copy == cache / "usr_a-sft-v1"
    assert (copy / "nested" / "tokenizer.json").read_text() == "{}"
    assert not (copy / MANIFEST).exists()

    assert fetch(fs, root, "usr_missing-sft-v1", cache) is None
    assert fetch(fs, root, "../store", cache) is None

    # Corrupt bytes of the same size: refused, nothing left behind.
    (Path(root) / "usr_a-sft-v1" / "adapter_model.safetensors").write_bytes(b"x" * 64)
    evict(cache, "usr_a-sft-v1")
    assert fetch(fs, root, "usr_a-sft-v1", cache) is None
    assert list(cache.iterdir()) == []

    # A manifest pointing outside the adapter's directory, or without a config: refused.
    manifest = Path(root) / "usr_a-sft-v1" / MANIFEST
    manifest.write_text(json.dumps({"files": {"../x": {}, "adapter_config.json": {}}}))
    assert fetch(fs, root, "usr_a-sft-v1", cache) is None
    manifest.write_text(json.dumps({"files": {}}))
    assert fetch(fs, root, "usr_a-sft-v1", cache) is None
    manifest.write_text("not json")
    assert fetch(fs, root, "usr_a-sft-v1", cache) is None
    assert list(cache.iterdir()) == []


def test_evict_deletes_one_copy(tmp_path: Path):
    (tmp_path / "usr_a-sft-v1").mkdir()
    (tmp_path / "usr_a-sft-v1" / "f").write_text("x")
    assert evict(tmp_path, "usr_a-sft-v1") is True
    assert evict(tmp_path, "usr_a-sft-v1") is False
    assert evict(tmp_path, "..") is False


def test_the_plugin_reads_the_settings_server_env_passes(tmp_path: Path):
    settings = ModelSettings(
        vllm_adapters_url="s3://bucket/adapters",
        vllm_adapters_storage_options={"anon": "true"},
        vllm_adapters_cache_dir=tmp_path,
        vllm_adapters_sweep_s=7,
    )
    env = server_env({"VLLM_PLUGINS": "other"}, settings)
    assert env["VLLM_PLUGINS"] == f"other,{PLUGIN}"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    config = ResolverConfig.from_env(env)
    assert config is not None
    assert (config.url, config.storage_options) == ("s3://bucket/adapters", {"anon": "true"})
    assert (config.cache_root, config.sweep_s) == (tmp_path, 7.0)
    plain = server_env({}, ModelSettings())
    assert plain["VLLM_PLUGINS"] == PLUGIN
    assert ResolverConfig.from_env(plain) is None


def test_the_plugin_wheel_declares_both_entry_points(tmp_path: Path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith("entry_points.txt"))
        entry_points = archive.read(info).decode()
    assert "attune_vllm_resolver.py" in names
    assert f"[vllm.general_plugins]\n{PLUGIN} = attune_vllm_resolver:register" in entry_points
    assert f"[vllm.endpoint_plugins]\n{PLUGIN} = attune_vllm_resolver:AdapterRoutes" in (
        entry_points
    )


class FetchingVllm(FakeVllm):
    """A fake replica with Attune's plugin: it fetches from the store into its cache."""

    def __init__(self, url: str, store_url: str, cache: Path) -> None:
        super().__init__(url)
        self.fs, self.root = fsspec.core.url_to_fs(store_url)
        self.cache = cache

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down or request.url.path not in (FETCH_ROUTE, "/v1/unload_lora_adapter"):
            return super().handle(request)
        name = json.loads(request.content)["lora_name"]
        if request.url.path == "/v1/unload_lora_adapter":
            evict(self.cache, name)
            return super().handle(request)
        if name not in self.adapters:
            copy = fetch(self.fs, self.root, name, self.cache)
            if copy is None:
                return httpx.Response(404, json={"error": {"message": "does not exist"}})
            self.adapters[name] = str(copy)
        return httpx.Response(200, json={"lora_name": name, "root": self.adapters[name]})


def test_backend_publishes_through_the_store_and_unpublish_leaves_no_copy(
    store_dir: Path, tmp_path: Path
):
    url = store_dir.as_uri()
    servers = [
        FetchingVllm(f"http://replica-{i}:8001", url, tmp_path / f"cache-{i}") for i in (1, 2)
    ]
    settings = ModelSettings(
        backend="vllm", adapters_dir=tmp_path / "unused", vllm_adapters_url=url, vllm_copies=None
    )
    replicas = [
        Replica(s.url, api_key="EMPTY", timeout_s=5, transport=httpx.MockTransport(s.handle))
        for s in servers
    ]
    backend = VllmBackend(replicas, model_dir=tmp_path, settings=settings)
    name = "usr_a-sft-v1"
    backend.publish(name, adapter(tmp_path / "registry", name))
    assert backend.placements[name].path == f"{url}/{name}"
    for server in servers:
        assert server.adapters[name] == str(server.cache / name)
    # A replica that lost it gets it back from the store by a health pass.
    servers[1].adapters.clear()
    evict(servers[1].cache, name)
    assert backend.reconcile() == 1
    assert (servers[1].cache / name).is_dir()

    assert backend.unpublish(name) is True
    assert not (store_dir / name).exists()
    for server in servers:
        assert name not in server.adapters
        assert not (server.cache / name).exists()
    assert backend.has_adapter(name) is False

    # A publish the replicas refuse (not in the store as uploaded) leaves nothing anywhere.
    bad = adapter(tmp_path / "registry", "usr_b-sft-v1")
    original = servers[0].handle

    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == FETCH_ROUTE:
            return httpx.Response(400, json={"error": {"message": "could not be loaded"}})
        return original(request)

    backend.replicas[0] = Replica(
        servers[0].url, api_key="EMPTY", timeout_s=5, transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(AdapterNotFoundError):
        backend.publish("usr_b-sft-v1", bad)
    assert not (store_dir / "usr_b-sft-v1").exists()
    assert all("usr_b-sft-v1" not in s.adapters for s in servers)


def test_adapter_files_hand_out_paths_or_urls(tmp_path: Path):
    local = AdapterFiles(tmp_path / "adapters", None)
    path = adapter(tmp_path / "adapters", "usr_a-sft-v1")
    assert local.stored("usr_a-sft-v1") == str(path.resolve())
    assert local.stored("usr_b-sft-v1") is None
    assert local.publish("usr_a-sft-v1", path) == str(path.resolve())
    assert local.withdraw("usr_a-sft-v1") is False

    store = AdapterStore((tmp_path / "store").as_uri())
    remote = AdapterFiles(tmp_path / "adapters", store)
    assert remote.stored("usr_a-sft-v1") is None  # local files are not reachable
    assert remote.publish("usr_a-sft-v1", path) == store.url_of("usr_a-sft-v1")
    assert remote.stored("usr_a-sft-v1") == store.url_of("usr_a-sft-v1")
    assert remote.withdraw("usr_a-sft-v1") is True
    assert remote.stored("usr_a-sft-v1") is None
