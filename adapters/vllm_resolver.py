"""Adapter files from an fsspec URL, inside a vLLM server: a LoRA resolver plugin.

Attune publishes an adapter by uploading its directory to ``<url>/<name>/``
(``adapters.vllm_store``); this module runs inside each vLLM replica and fetches it from
there, so replicas need no filesystem shared with Attune. It is installed into vLLM's
virtual environment as the top-level module ``attune_vllm_resolver`` (a wheel built by
``adapters.vllm_plugin``) and imported from Attune as ``adapters.vllm_resolver`` for the
format both sides share. At import it needs only fsspec and FastAPI (both in either
environment); vLLM is imported inside what vLLM calls.

Two entry points, both named ``attune_adapters`` (vLLM loads endpoint plugins only when
``VLLM_PLUGINS`` names them; ``adapters.vllm_server.server_env`` does):

* ``vllm.general_plugins`` → :func:`register`: registers :class:`FsspecResolver`, which
  vLLM asks whenever a request names an adapter it does not hold. It downloads
  ``<url>/<name>/`` into ``<cache>/<name>``, checked against the upload's manifest
  (sizes and SHA-256), and answers the local copy; a missing or corrupt upload answers
  nothing (vLLM's 404), and a half-downloaded one never reaches vLLM.
* ``vllm.endpoint_plugins`` → :class:`AdapterRoutes`: ``POST /v1/attune/fetch_lora_adapter``
  (fetch and load now: how Attune publishes), and ``POST /v1/unload_lora_adapter``
  replaced by one that also deletes the local copy. When the server starts, its cache
  directory is emptied (a restart forgets runtime loads); a sweep every
  ``ATTUNE_MODEL__VLLM_ADAPTERS_SWEEP_S`` seconds unloads adapters whose upload is gone
  (deleted while this replica could not be reached) and deletes copies nothing holds.

A vLLM server's plugins see no Attune settings object: they read the same environment
variables Attune's settings do (``ATTUNE_MODEL__VLLM_ADAPTERS_URL``, ``…_STORAGE_OPTIONS``
as JSON, ``…_CACHE_DIR``, ``…_SWEEP_S``), which ``attune vllm serve`` passes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

log = logging.getLogger("attune_vllm_resolver")

PLUGIN = "attune_adapters"
"""The name of both entry points (what ``VLLM_PLUGINS`` must list)."""

MANIFEST = "attune-manifest.json"
"""Written last by an upload and removed first by a deletion: an adapter at the URL exists
exactly while its manifest does, and the manifest says what complete files look like."""

FETCH_ROUTE = "/v1/attune/fetch_lora_adapter"
UNLOAD_ROUTE = "/v1/unload_lora_adapter"
ENV = "ATTUNE_MODEL__VLLM_ADAPTERS_"
"""Prefix of the variables configuring the plugin (Attune's ``ModelSettings`` names)."""


def valid_name(name: str) -> bool:
    """Whether ``name`` can name an adapter directory: one plain path segment."""
    return (
        0 < len(name) <= 200
        and name == name.strip()
        and not name.startswith(".")
        and not any(c in name for c in "/\\:*?\0")
    )


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_of(directory: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``directory`` (POSIX relative path → size and SHA-256)."""
    return {
        path.relative_to(directory).as_posix(): {
            "size": path.stat().st_size,
            "sha256": file_digest(path),
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _safe_relative(rel: object) -> bool:
    if not isinstance(rel, str) or not rel:
        return False
    parts = PurePosixPath(rel).parts
    return not PurePosixPath(rel).is_absolute() and ".." not in parts and "\\" not in rel


def fetch(fs: Any, root: str, name: str, cache: Path) -> Path | None:
    """Download adapter ``name`` from ``<root>/<name>/`` into ``<cache>/<name>``.

    The files go to a temporary directory first and are moved into place only once each
    matches the manifest, so a reader never sees a partial copy.

    Args:
        fs: The fsspec filesystem of the store.
        root: The store's root path in ``fs``.
        name: The adapter's name.
        cache: This server's local cache directory.

    Returns:
        The local copy, or ``None`` when the store holds no complete, intact adapter
        ``name`` (nothing is left in ``cache`` then).
    """
    if not valid_name(name):
        return None
    base = f"{root.rstrip('/')}/{name}"
    try:
        manifest = json.loads(fs.cat_file(f"{base}/{MANIFEST}"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("adapter %s: unreadable manifest in the store", name)
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(files, dict)
        or "adapter_config.json" not in files
        or not all(_safe_relative(rel) for rel in files)
    ):
        log.warning("adapter %s: malformed manifest in the store", name)
        return None
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=cache))
    try:
        for rel, meta in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f"{base}/{rel}", str(target))
            if not isinstance(meta, dict) or (
                target.stat().st_size != meta.get("size")
                or file_digest(target) != meta.get("sha256")
            ):
                log.warning("adapter %s: %s does not match its manifest", name, rel)
                return None
        final = cache / name
        shutil.rmtree(final, ignore_errors=True)  # a copy left by a failed load
        staging.rename(final)
        return final
    except OSError as exc:
        log.warning("adapter %s could not be fetched: %s", name, type(exc).__name__)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def evict(cache: Path, name: str) -> bool:
    """Delete the local copy of adapter ``name``; whether there was one."""
    if not valid_name(name):
        return False
    copy = cache / name
    existed = copy.exists()
    shutil.rmtree(copy, ignore_errors=True)
    return existed


@dataclass
class ResolverConfig:
    """Where adapters come from and where this server keeps them.

    Attributes:
        url: The store's root fsspec URL.
        storage_options: Passed to fsspec.
        cache_root: Local copies go to ``<cache_root>/port-<port>`` (one per server).
        sweep_s: Seconds between sweeps (0: never).
        cache: This server's directory, set when the server starts.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    cache_root: Path = Path("~/.cache/attune/vllm-adapters")
    sweep_s: float = 60.0
    cache: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ResolverConfig | None:
        """Read ``ATTUNE_MODEL__VLLM_ADAPTERS_*``; ``None`` when no URL is set."""
        env = dict(os.environ if env is None else env)
        url = env.get(f"{ENV}URL", "").strip()
        if not url:
            return None
        options = json.loads(env.get(f"{ENV}STORAGE_OPTIONS") or "{}")
        cache_root = Path(env.get(f"{ENV}CACHE_DIR") or cls.cache_root).expanduser()
        return cls(url, options, cache_root, float(env.get(f"{ENV}SWEEP_S") or cls.sweep_s))

    def filesystem(self) -> tuple[Any, str]:
        """The store's fsspec filesystem and root path."""
        fs, root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, str(root)


def _base_class() -> type:
    try:
        from vllm.lora.resolver import LoRAResolver  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # imported by Attune, outside vLLM's venv
        return object
    resolver: type = LoRAResolver
    return resolver


class FsspecResolver(_base_class()):  # type: ignore[misc]
    """vLLM's ``LoRAResolver`` over the store: fetches adapters vLLM does not hold."""

    def __init__(self, config: ResolverConfig) -> None:
        """Resolve from ``config`` (its ``cache`` is set once the server starts)."""
        self.config = config

    async def resolve_lora(self, base_model_name: str, lora_name: str) -> Any:
        """Fetch ``lora_name`` and answer a ``LoRARequest`` for the local copy, or ``None``.

        vLLM calls it under its per-name lock and sets the request's id itself.
        """
        cache = self.config.cache
        if cache is None:  # the endpoint plugin did not start (VLLM_PLUGINS lacks it)
            log.error("%s: no cache directory; set VLLM_PLUGINS=%s", PLUGIN, PLUGIN)
            return None
        fs, root = self.config.filesystem()
        path = await asyncio.to_thread(fetch, fs, root, lora_name, cache)
        if path is None:
            return None
        from vllm.lora.request import LoRARequest  # type: ignore[import-not-found, unused-ignore]

        log.info("adapter %s fetched from the store", lora_name)
        return LoRARequest(lora_name=lora_name, lora_int_id=1, lora_path=str(path))


_RESOLVER: FsspecResolver | None = None


def register() -> None:
    """``vllm.general_plugins`` entry point: register the resolver (every vLLM process).

    Without ``ATTUNE_MODEL__VLLM_ADAPTERS_URL`` it does nothing.
    """
    global _RESOLVER
    config = ResolverConfig.from_env()
    if config is None or _RESOLVER is not None:
        return
    from vllm.lora.resolver import LoRAResolverRegistry  # type: ignore[import-not-found, unused-ignore]

    _RESOLVER = FsspecResolver(config)
    LoRAResolverRegistry.register_resolver(PLUGIN, _RESOLVER)


class AdapterRoutes:
    """``vllm.endpoint_plugins`` entry point: Attune's routes on the API server."""

    name = PLUGIN
    required_tasks = None

    def attach_router(self, app: FastAPI) -> None:
        """Add the fetch route and replace the unload route (only with a store URL)."""
        if _RESOLVER is not None:
            app.post(FETCH_ROUTE)(fetch_lora_adapter)
            app.post(UNLOAD_ROUTE)(unload_lora_adapter)

    async def init_state(self, engine_client: Any, state: Any, args: Any) -> None:
        """Give the resolver this server's empty cache directory; start the sweep."""
        if _RESOLVER is None:
            return
        config = _RESOLVER.config
        cache = config.cache_root / f"port-{getattr(args, 'port', 0)}"
        shutil.rmtree(cache, ignore_errors=True)  # a restarted server holds nothing
        cache.mkdir(parents=True, exist_ok=True)
        config.cache = cache
        models = getattr(state, "openai_serving_models", None)
        if models is not None and config.sweep_s > 0:
            state.attune_sweep = asyncio.get_running_loop().create_task(_sweeps(models, config))


async def fetch_lora_adapter(raw: Request) -> Response:
    """``POST /v1/attune/fetch_lora_adapter {"lora_name"}``: fetch and load it now.

    Answers 200 with the local copy's path (also when it was loaded already), or vLLM's
    error: 404 when the store holds no intact adapter of that name, 400 when vLLM refuses
    its files (the local copy is deleted then).
    """
    from vllm.lora.request import LoRARequest  # type: ignore[import-not-found, unused-ignore]

    body = await raw.json()
    name = str(body.get("lora_name", "")) if isinstance(body, dict) else ""
    models = raw.app.state.openai_serving_models
    result = await models.resolve_lora(name)
    if isinstance(result, LoRARequest):
        return JSONResponse({"lora_name": name, "root": result.lora_path})
    cache = _RESOLVER.config.cache if _RESOLVER is not None else None
    if cache is not None and name not in models.lora_requests:
        evict(cache, name)
    return JSONResponse(result.model_dump(), status_code=result.error.code)


async def unload_lora_adapter(raw: Request) -> Response:
    """VLLM's ``POST /v1/unload_lora_adapter``, then the adapter's local copy is deleted.

    The copy goes even when vLLM did not hold the adapter (a copy left by a failed load).
    """
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse  # type: ignore[import-not-found, unused-ignore]
    from vllm.entrypoints.serve.lora.protocol import UnloadLoRAAdapterRequest  # type: ignore[import-not-found, unused-ignore]

    request = UnloadLoRAAdapterRequest.model_validate(await raw.json())
    response = await raw.app.state.openai_serving_models.unload_lora_adapter(request)
    if _RESOLVER is not None and _RESOLVER.config.cache is not None:
        evict(_RESOLVER.config.cache, request.lora_name)
    if isinstance(response, ErrorResponse):
        return JSONResponse(response.model_dump(), status_code=response.error.code)
    return Response(status_code=200, content=response)


async def _sweeps(models: Any, config: ResolverConfig) -> None:
    while True:
        await asyncio.sleep(config.sweep_s)
        try:
            await sweep(models, config)
        except Exception:  # a failed sweep must not end the sweeps
            log.exception("%s: sweep failed", PLUGIN)


async def sweep(models: Any, config: ResolverConfig) -> list[str]:
    """Unload adapters fetched here whose upload is gone; delete copies nothing holds.

    Args:
        models: vLLM's ``OpenAIServingModels``.
        config: The resolver's configuration (with its ``cache`` set).

    Returns:
        The names unloaded or deleted.
    """
    from vllm.entrypoints.serve.lora.protocol import UnloadLoRAAdapterRequest  # type: ignore[import-not-found, unused-ignore]

    cache = config.cache
    if cache is None:
        return []
    fs, root = config.filesystem()
    gone: list[str] = []
    for name, request in list(models.lora_requests.items()):
        if Path(request.lora_path).parent != cache:
            continue  # loaded from a path by Attune or an operator, not fetched here
        exists = await asyncio.to_thread(fs.exists, f"{root.rstrip('/')}/{name}/{MANIFEST}")
        if not exists:
            await models.unload_lora_adapter(UnloadLoRAAdapterRequest(lora_name=name))
            evict(cache, name)
            gone.append(name)
    for copy in list(cache.iterdir()) if cache.is_dir() else []:
        name = copy.name
        if name.startswith(".") or name in models.lora_requests:
            continue
        lock = models.lora_resolver_lock[name]
        if lock.locked():
            continue  # being fetched right now
        async with lock:
            if name not in models.lora_requests and evict(cache, name):
                gone.append(name)
    if gone:
        log.info("%s: swept %d adapter copies", PLUGIN, len(gone))
    return gone
