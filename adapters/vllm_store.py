"""Where vLLM replicas get adapter files: the registry's directory, or an fsspec URL.

Two ways, chosen by ``ATTUNE_MODEL__VLLM_ADAPTERS_URL``:

* unset: replicas share a filesystem with Attune and load ``<adapters_dir>/<name>`` by
  path (vLLM's ``/v1/load_lora_adapter``);
* an fsspec URL (``s3://bucket/adapters``, ``gs://…``, ``file:///shared/…``; ``memory://``
  lives in one process and cannot reach a replica): publishing uploads the adapter's
  directory to ``<url>/<name>/`` with a manifest written last
  (:data:`adapters.vllm_resolver.MANIFEST`), and each replica fetches it through the
  resolver plugin installed in its venv (``adapters.vllm_resolver``). The path the
  backend hands a replica is then the adapter's URL, and ``Replica.load`` asks the
  replica to fetch it rather than to read a path.

Unpublishing deletes the upload before the replicas unload it, so no replica can fetch it
again in between; a deleted adapter leaves no copy in the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import fsspec

from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError
from adapters.vllm_resolver import MANIFEST, manifest_of, valid_name

log = logging.getLogger(__name__)


def is_url(path: str) -> bool:
    """Whether a placement's ``path`` is an adapter's URL in a store (not a local path)."""
    return "://" in path


class AdapterStore:
    """Adapter directories under one fsspec URL, as the replicas' resolver reads them."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        """Use the store at ``url``.

        Args:
            url: Its root, an fsspec URL.
            storage_options: Passed to fsspec (credentials, endpoints).

        Raises:
            ValueError: ``url`` is an in-memory filesystem, which no replica can read.
        """
        if url.startswith("memory:"):
            raise ValueError("vllm_adapters_url: memory:// is not shared with vLLM replicas")
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.root = str(root).rstrip("/")

    def url_of(self, name: str) -> str:
        """The URL of adapter ``name``'s directory."""
        return f"{self.url}/{name}"

    def exists(self, name: str) -> bool:
        """Whether the store holds a complete upload of ``name`` (its manifest)."""
        return valid_name(name) and bool(self.fs.exists(f"{self.root}/{name}/{MANIFEST}"))

    def upload(self, name: str, directory: Path) -> str:
        """Upload ``directory``'s files to ``<url>/<name>/``, the manifest last.

        An upload whose manifest already matches is left as it is.

        Returns:
            The adapter's URL.

        Raises:
            AdapterNotFoundError: ``name`` is not a plain name, or ``directory`` holds no
                adapter (nothing is uploaded then).
        """
        if not valid_name(name) or not (directory / "adapter_config.json").is_file():
            raise AdapterNotFoundError(name)
        files = manifest_of(directory)
        manifest = json.dumps({"name": name, "files": files}, sort_keys=True).encode()
        base = f"{self.root}/{name}"
        try:
            if self.fs.cat_file(f"{base}/{MANIFEST}") == manifest:
                return self.url_of(name)
        except FileNotFoundError:
            pass
        self._forget(base)  # a different or partial upload of the same name
        for rel in files:
            target = f"{base}/{rel}"
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(directory / rel), target)
        self.fs.pipe_file(f"{base}/{MANIFEST}", manifest)
        log.info("adapter %s uploaded to the adapter store (%d files)", name, len(files))
        return self.url_of(name)

    def remove(self, name: str) -> bool:
        """Delete ``<url>/<name>/`` (the manifest first); whether anything was there."""
        if not valid_name(name):
            return False
        base = f"{self.root}/{name}"
        existed = bool(self.fs.exists(base))
        self._forget(base)
        if existed:
            log.info("adapter %s removed from the adapter store", name)
        return existed

    def _forget(self, base: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{base}/{MANIFEST}")
        if self.fs.exists(base):
            self.fs.rm(base, recursive=True)


class AdapterFiles:
    """The adapter files the backend hands replicas: local paths, or a store's URLs."""

    def __init__(self, adapters_dir: Path | None, store: AdapterStore | None) -> None:
        """Hand out paths under ``adapters_dir``, or URLs in ``store`` when there is one."""
        self.adapters_dir = adapters_dir
        self.store = store

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> AdapterFiles:
        """The files as ``settings.vllm_adapters_url`` (and ``adapters_dir``) say."""
        url = settings.vllm_adapters_url
        store = AdapterStore(url, settings.vllm_adapters_storage_options) if url else None
        return cls(settings.adapters_dir, store)

    def publish(self, name: str, path: Path) -> str:
        """Make ``path`` reachable by the replicas; where they load ``name`` from.

        Raises:
            AdapterNotFoundError: The store is used and ``path`` holds no adapter.
        """
        if self.store is not None:
            return self.store.upload(name, path)
        return str(path.expanduser().resolve())

    def withdraw(self, name: str) -> bool:
        """Delete the store's copy of ``name`` (none without a store); whether one was there."""
        return self.store.remove(name) if self.store is not None else False

    def stored(self, name: str) -> str | None:
        """Where ``name`` can be loaded from without a placement, if it can.

        The store's URL when it holds ``name``; else ``<adapters_dir>/<name>`` when that
        holds an adapter (the registry's storage, shared with the replicas).
        """
        if not valid_name(name):
            return None
        if self.store is not None:
            return self.store.url_of(name) if self.store.exists(name) else None
        if self.adapters_dir is None:
            return None
        candidate = self.adapters_dir.expanduser() / name
        if not (candidate / "adapter_config.json").is_file():
            return None
        return str(candidate.resolve())
