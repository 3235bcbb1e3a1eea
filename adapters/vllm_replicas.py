"""One vLLM OpenAI-compatible server (a replica) as the vLLM backend sees it.

A :class:`Replica` talks to one server over HTTP: its model list (the base model and the
LoRA adapters loaded at runtime), loading and unloading adapters, and whether it answers.
It knows nothing of users or routing; :mod:`adapters.vllm_backend` decides what goes where.

vLLM's runtime loading is trusted only as far as its model list confirms it: a load may
answer 200 for a path that holds nothing (vLLM #18372), so :meth:`Replica.load` checks the
list afterwards, and the list is the only source for "this replica holds adapter X".

An adapter published to a store (``ATTUNE_MODEL__VLLM_ADAPTERS_URL``) has a URL for a
path: the replica is asked to fetch it through Attune's resolver plugin
(``adapters.vllm_resolver``) instead, and the list is checked alike.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import PurePosixPath

import httpx

from adapters.errors import AdapterNotFoundError
from adapters.vllm_resolver import FETCH_ROUTE
from adapters.vllm_store import is_url

log = logging.getLogger(__name__)

DOWN_FOR_S = 2.0
"""After a failed request, a replica is treated as down this long before it is asked again."""

MODELS_TTL_S = 1.0
"""How long a model list is reused: turns ask for it on every route decision."""


class ReplicaDownError(ConnectionError):
    """The replica did not answer, or answered a server error."""


@dataclass(frozen=True)
class ServedModel:
    """One entry of a replica's ``/v1/models``.

    Attributes:
        id: The name a request uses (the base model's served name, or an adapter's).
        root: Where its files were loaded from.
        parent: The base model's name for an adapter; ``None`` for the base model.
    """

    id: str
    root: str
    parent: str | None


class Replica:
    """A client for one vLLM server (thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Point at the server whose base URL is ``url`` (e.g. ``http://127.0.0.1:8001``).

        Args:
            url: The server's base URL, without ``/v1``.
            api_key: Its bearer token (``EMPTY`` when it was started without one).
            timeout_s: Deadline for each control request (models, load, unload).
            transport: Replaces the network (unit tests talk to a fake server).
        """
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}"},
            transport=transport,
        )
        self._lock = threading.Lock()
        self._models: dict[str, ServedModel] | None = None
        self._models_at = 0.0
        self._down_until = 0.0

    def __repr__(self) -> str:
        return f"Replica({self.url!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # -- state ------------------------------------------------------------------------

    def models(self, *, fresh: bool = False) -> dict[str, ServedModel] | None:
        """The replica's served models by name, or ``None`` while it does not answer.

        Args:
            fresh: Ask the server even if a list younger than ``MODELS_TTL_S`` is cached.
        """
        now = time.monotonic()
        with self._lock:
            if not fresh and self._models is not None and now - self._models_at < MODELS_TTL_S:
                return self._models
            if not fresh and now < self._down_until:
                return None
        try:
            response = self._http.get("/v1/models")
            response.raise_for_status()
            data = response.json()["data"]
        except (httpx.HTTPError, ValueError, KeyError):
            self.mark_down()
            return None
        models = {
            str(m["id"]): ServedModel(str(m["id"]), str(m.get("root", "")), m.get("parent"))
            for m in data
        }
        with self._lock:
            self._models, self._models_at, self._down_until = models, time.monotonic(), 0.0
        return models

    def mark_down(self) -> None:
        """Take the replica out of rotation for ``DOWN_FOR_S`` (a request to it failed)."""
        with self._lock:
            self._models = None
            self._down_until = time.monotonic() + DOWN_FOR_S

    def is_up(self) -> bool:
        """Whether the replica answers its model list."""
        return self.models() is not None

    def base_model(self) -> str:
        """The served name of the base model (the entry without a parent).

        Raises:
            ReplicaDownError: The replica does not answer.
        """
        models = self.models()
        if models is None:
            raise ReplicaDownError(f"vLLM replica {self.url} does not answer")
        for model in models.values():
            if model.parent is None:
                return model.id
        raise ReplicaDownError(f"vLLM replica {self.url} lists no base model")

    def holds(self, name: str, *, fresh: bool = False) -> bool:
        """Whether the replica's model list names adapter ``name``."""
        models = self.models(fresh=fresh)
        return models is not None and name in models and models[name].parent is not None

    # -- loading ----------------------------------------------------------------------

    def load(self, name: str, path: str) -> None:
        """Load adapter ``name`` from ``path`` (as the server sees it) and verify it.

        A ``path`` with a scheme (``s3://…/name``) is the adapter's URL in the store: the
        replica fetches it with its resolver plugin (:meth:`fetch`). Loading an adapter
        already loaded from the same files changes nothing.

        Raises:
            AdapterNotFoundError: The server finds no adapter at ``path``, refuses it, or
                does not list it afterwards; or ``name`` is held with other files.
            ReplicaDownError: The replica does not answer.
        """
        if is_url(path):
            self.fetch(name)
            return
        response = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        models = self.models(fresh=True)
        if models is None:
            raise ReplicaDownError(f"vLLM replica {self.url} stopped answering")
        served = models.get(name)
        if response.status_code != 200 and served is None:
            raise AdapterNotFoundError(name)
        if served is None or served.parent is None or served.root != path:
            # Listed under other files (a reused name), or a 200 for nothing: never serve it.
            raise AdapterNotFoundError(name)

    def fetch(self, name: str) -> None:
        """Have the replica fetch adapter ``name`` from the store and load it, verified.

        The replica's resolver (``adapters.vllm_resolver``) downloads ``<url>/<name>/``,
        checks it against the upload's manifest and loads the local copy; the model list
        must then name the adapter with a copy of that name.

        Raises:
            AdapterNotFoundError: The store holds no intact adapter ``name``, vLLM refuses
                its files, the list does not name it afterwards, or the replica has no
                resolver plugin (it was not started by ``attune vllm serve``).
            ReplicaDownError: The replica does not answer.
        """
        response = self._post(FETCH_ROUTE, {"lora_name": name})
        if response.status_code == 404 and "detail" in response.text:
            log.warning("vLLM replica %s has no adapter resolver plugin", self.url)
        models = self.models(fresh=True)
        if models is None:
            raise ReplicaDownError(f"vLLM replica {self.url} stopped answering")
        served = models.get(name)
        if (
            response.status_code != 200
            or served is None
            or served.parent is None
            or PurePosixPath(served.root).name != name
        ):
            raise AdapterNotFoundError(name)

    def unload(self, name: str) -> bool:
        """Unload adapter ``name``; whether the replica held it.

        Raises:
            ReplicaDownError: The replica does not answer, or still lists the adapter.
        """
        response = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        if self.holds(name, fresh=True):
            raise ReplicaDownError(f"vLLM replica {self.url} still lists adapter {name!r}")
        return response.status_code == 200

    def _post(self, route: str, body: dict[str, str]) -> httpx.Response:
        """POST a control request; a replica that fails to answer is marked down.

        Raises:
            ReplicaDownError: No answer, or a server error.
        """
        try:
            response = self._http.post(route, json=body)
        except httpx.HTTPError as exc:
            self.mark_down()
            raise ReplicaDownError(f"vLLM replica {self.url}: {exc}") from exc
        if response.status_code >= 500:
            self.mark_down()
            raise ReplicaDownError(f"vLLM replica {self.url} answered {response.status_code}")
        return response
