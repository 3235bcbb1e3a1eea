"""The ``vllm`` chat backend: vLLM OpenAI-compatible servers, adapters loaded at runtime.

``ATTUNE_MODEL__BACKEND=vllm`` with ``ATTUNE_MODEL__VLLM_URLS=http://host:port[,...]``.
Each replica serves the same base model directory the local backend uses (``attune vllm
serve`` starts one). Chat models are LangChain ``ChatOpenAI``s against the replica chosen
for the request.

Publication and placement, designed around vLLM's known traps:

* An adapter is published to every replica that answers, and a load counts only once the
  replica's ``/v1/models`` lists the name with the same files (a load may answer 200 for a
  path that holds nothing). The placement table (:class:`Placement`) records which files
  each published name came from and which replicas hold it.
* Runtime loads are lost when a replica restarts and never reach a replica started later:
  a request for an adapter no replica holds loads it again from the placement table, or
  from where the replicas find adapter files (``adapters.vllm_store``: the registry's
  ``<adapters_dir>/<name>`` on a shared filesystem, or an upload to
  ``vllm_adapters_url``, fetched by the replicas' resolver plugin). Past
  ``vllm_load_deadline_s``, or without files, the route falls back as for any adapter that
  is not available, while the load finishes in the background.
* vLLM serves a stale prefix cache for a reused name, so every version has its own name
  (the registry's ``<owner>-<kind>-v<N>``); a name unpublished here is refused until it is
  published again, even by a replica that missed the unload.
* While no replica answers, requests raise :class:`BackendUnavailableError` (the API
  answers 503 with ``Retry-After``), or, with ``vllm_fallback=local``, generate in-process.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import logging
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from adapters.backend import GUIDED, LocalBackend, check_output_format
from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError, BackendUnavailableError
from adapters.model_store import model_id_for, resolve_model_dir
from adapters.vllm_chat import VllmChatModel
from adapters.vllm_health import HealthChecks, reconcile
from adapters.vllm_placement import Placement, PlacementTable, is_group_adapter
from adapters.vllm_replicas import Replica, ReplicaDownError
from adapters.vllm_store import AdapterFiles

log = logging.getLogger(__name__)

__all__ = ["Placement", "VllmBackend", "is_group_adapter"]


class VllmBackend(PlacementTable):
    """Chat through vLLM replicas; adapters published to them at runtime."""

    name = "vllm"
    # SmolLM2-135M cannot call tools reliably, and the servers run without a tool parser.
    supports_tools = False
    output_formats = GUIDED

    def __init__(
        self,
        replicas: list[Replica],
        *,
        model_dir: Path,
        settings: ModelSettings,
    ) -> None:
        """Serve through ``replicas``; most callers want :meth:`from_settings`.

        Args:
            replicas: The vLLM servers, all on the base model in ``model_dir``.
            model_dir: The base model directory (its tokenizer counts tokens here).
            settings: The model settings (timeouts, fallback, adapters directory).
        """
        if not replicas:
            raise ValueError("the vllm backend needs ATTUNE_MODEL__VLLM_URLS")
        super().__init__(settings)
        self.replicas = replicas
        self.model_id = model_id_for(model_dir)
        self.model_dir = model_dir
        self.files = AdapterFiles.from_settings(settings)
        """Where the replicas load adapter files from (paths, or the store's URLs)."""
        self._turn = itertools.count()
        self._fallback: LocalBackend | None = None
        self._loads = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="vllm-load")
        self._loading: dict[str, concurrent.futures.Future[Replica]] = {}
        self._health: HealthChecks | None = None

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> VllmBackend:
        """Build the backend for ``settings.vllm_replicas`` (no server is contacted yet).

        Raises:
            ValueError: No replica URL is configured.
            ModelNotFoundError: The base model directory is missing.
        """
        replicas = [
            Replica(url, api_key=settings.vllm_api_key, timeout_s=settings.vllm_load_timeout_s)
            for url in settings.vllm_replicas
        ]
        if not replicas:
            raise ValueError("ATTUNE_MODEL__BACKEND=vllm needs ATTUNE_MODEL__VLLM_URLS")
        backend = cls(replicas, model_dir=resolve_model_dir(settings), settings=settings)
        backend.start_health_checks(settings.vllm_health_interval_s)
        return backend

    # -- ChatBackend ----------------------------------------------------------------------

    def chat_model(
        self,
        *,
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        ignore_eos: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> BaseChatModel:
        """Return a ``ChatOpenAI`` on the replica chosen for ``adapter``.

        Args:
            adapter: LoRA adapter name, or ``None`` for the base model.
            max_tokens: Most tokens to generate.
            temperature: ``0`` decodes greedily.
            top_p: Nucleus sampling mass.
            stop: Stop strings.
            seed: Makes sampling reproducible.
            ignore_eos: Sample past end-of-sequence tokens (vLLM's extension).
            response_format: OpenAI's, passed on: vLLM honours ``json_object`` and
                ``json_schema`` by guided decoding.

        Raises:
            AdapterNotFoundError: No replica holds ``adapter`` or can load it.
            BackendUnavailableError: No replica answers (and no local fallback that can
                honour ``response_format``).
        """
        check_output_format(response_format, self.output_formats, self.name)
        structured = (response_format or {}).get("type", "text") != "text"
        try:
            replica = self._replica_for(adapter)
        except BackendUnavailableError:
            fallback = self._fallback_backend()
            if fallback is None or structured:
                raise
            return fallback.chat_model(
                adapter=adapter,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                stop=stop,
                seed=seed,
            )
        model = VllmChatModel(
            model=adapter if adapter is not None else replica.base_model(),
            base_url=f"{replica.url}/v1",
            api_key=SecretStr(self.settings.vllm_api_key),
            max_completion_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop_sequences=stop,
            seed=seed,
            stream_usage=True,
            max_retries=0,
            request_timeout=self.settings.vllm_timeout_s,
            extra_body={"ignore_eos": True} if ignore_eos else None,
            model_kwargs={"response_format": response_format} if structured else {},
        )
        return model.configure(
            on_down=replica.mark_down, retry_after_s=self.settings.vllm_retry_after_s
        )

    @functools.cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The base model's tokenizer, loaded on first use."""
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            self.model_dir, local_files_only=True
        )
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Count the tokens of ``text`` with the base model's tokenizer (no special tokens)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def has_adapter(self, name: str) -> bool:
        """Whether a replica holds ``name``, or can load it now from known files.

        While no replica answers, the local fallback (if configured) decides.
        """
        try:
            self._replica_for(name)
        except AdapterNotFoundError:
            return False
        except BackendUnavailableError:
            fallback = self._fallback_backend()
            return fallback is not None and fallback.has_adapter(name)
        return True

    def publish(self, name: str, path: Path) -> None:
        """Load adapter ``name`` from ``path`` on its replicas that answer, verified.

        A user's adapter goes to ``vllm_copies`` answering replicas, its home ones first
        (:meth:`home_order`); a group or hot adapter to every answering replica. With a
        store (``vllm_adapters_url``) its files are uploaded first, and the replicas fetch
        them from there.

        Raises:
            AdapterNotFoundError: ``name`` is not a plain name, or a replica finds no
                adapter at ``path`` (nothing stays loaded or uploaded then).
            BackendUnavailableError: No replica answers.
        """
        if not name or "/" in name or name != name.strip() or name.startswith("."):
            raise AdapterNotFoundError(name)
        copies = self.settings.vllm_copies
        everywhere = copies is None or self.pinned(name)
        targets = list(self.replicas) if everywhere else self.home_order(name, self.replicas)
        wanted = len(targets) if everywhere or copies is None else copies
        with self._lock:
            where = self.files.publish(name, path)
            loaded: set[str] = set()
            for replica in targets:
                if len(loaded) >= wanted:
                    break
                try:
                    replica.load(name, where)
                except ReplicaDownError:
                    log.warning("adapter %s not published to %s: it does not answer", name, replica)
                    continue
                except AdapterNotFoundError:
                    self.files.withdraw(name)
                    self._unload_everywhere(name)
                    raise
                loaded.add(replica.url)
                self._make_room(replica, keep=name)
            if not loaded:
                raise self._unavailable()
            self._retired.discard(name)
            self.placements[name] = Placement(where, loaded, time.monotonic())
        for url in sorted(loaded):
            self._record(name, url, "loaded", where)

    def unpublish(self, name: str) -> bool:
        """Unload ``name`` from every replica; whether one held it or it was published here.

        It is never served by this backend afterwards, until published again. Its upload
        to the store, if any, is deleted first: no replica can fetch it again meanwhile.
        """
        with self._lock:
            self._retired.add(name)
            known = self.placements.pop(name, None) is not None
            try:
                uploaded = self.files.withdraw(name)
            finally:  # unloaded even when the store cannot be reached (the error says so)
                held = self._unload_everywhere(name)
        if self.placement_log is not None:
            self.placement_log.forgotten(name)
        return held or known or uploaded

    # -- health ---------------------------------------------------------------------------

    def reconcile(self) -> int:
        """One health pass (``adapters.vllm_health.reconcile``); adapters loaded again."""
        return reconcile(self.replicas, self)

    def start_health_checks(self, interval_s: float) -> None:
        """Run :meth:`reconcile` every ``interval_s`` seconds until :meth:`close` (0: never)."""
        if self._health is None and interval_s > 0:
            self._health = HealthChecks(self.reconcile, interval_s)

    def close(self) -> None:
        """Stop the health checks and close the replicas' connections."""
        if self._health is not None:
            self._health.stop()
            self._health = None
        for replica in self.replicas:
            replica.close()

    # -- placement ------------------------------------------------------------------------

    def _replica_for(self, adapter: str | None) -> Replica:
        """The replica to send a request for ``adapter`` to, loading the adapter if needed.

        A load on demand runs in the background; past ``vllm_load_deadline_s`` the request
        is refused as for an adapter that is not available (the route falls back to the
        group adapter or the base model and says so), and the load carries on.
        """
        up = [r for r in self.replicas if r.is_up()]
        if not up:
            raise self._unavailable()
        if adapter is None:
            return up[next(self._turn) % len(up)]
        if adapter in self._retired:
            raise AdapterNotFoundError(adapter)
        holding = [r for r in up if r.holds(adapter)]
        with self._lock:
            placement = self.placements.get(adapter)
            if placement is not None:
                placement.last_used = time.monotonic()
            if holding:
                return holding[next(self._turn) % len(holding)]
            loading = self._loading.get(adapter)
            if loading is None:
                path = placement.path if placement is not None else self.files.stored(adapter)
                if path is None:
                    raise AdapterNotFoundError(adapter)
                loading = self._loads.submit(self._load_somewhere, adapter, path, up)
                self._loading[adapter] = loading
                loading.add_done_callback(lambda done: self._loaded(adapter, done))
        try:
            return loading.result(timeout=self.settings.vllm_load_deadline_s)
        except concurrent.futures.TimeoutError:
            log.warning("adapter %s still loading after the deadline", adapter)
            raise AdapterNotFoundError(adapter) from None

    def _loaded(self, name: str, done: concurrent.futures.Future[Replica]) -> None:
        with self._lock:
            if self._loading.get(name) is done:
                del self._loading[name]

    def _load_somewhere(self, name: str, path: str, up: list[Replica]) -> Replica:
        """Load ``name`` on one answering replica from ``path``, its home one first."""
        for replica in self.home_order(name, up):
            try:
                replica.load(name, path)
            except ReplicaDownError:
                continue
            log.info("adapter %s loaded on %s on demand", name, replica)
            with self._lock:
                placement = self.placements.setdefault(name, Placement(path))
                placement.replicas.add(replica.url)
                placement.last_used = time.monotonic()
                self._make_room(replica, keep=name)
            self._record(name, replica.url, "loaded", path)
            return replica
        raise self._unavailable()

    def _unload_everywhere(self, name: str) -> bool:
        held = False
        for replica in self.replicas:
            try:
                held = replica.unload(name) or held
            except ReplicaDownError:
                # A replica that is down lost its runtime loads or will be refused the
                # name: ``_retired`` keeps it from being routed there.
                log.warning("could not unload adapter %s from %s", name, replica)
        return held

    def _unavailable(self) -> BackendUnavailableError:
        urls = ", ".join(r.url for r in self.replicas)
        return BackendUnavailableError(
            f"no model server answers ({urls}); retry shortly",
            retry_after_s=self.settings.vllm_retry_after_s,
        )

    def _fallback_backend(self) -> LocalBackend | None:
        """The in-process backend serving while no replica answers, when configured."""
        if self.settings.vllm_fallback != "local":
            return None
        with self._lock:
            if self._fallback is None:
                self._fallback = LocalBackend.from_settings(self.settings)
            return self._fallback
