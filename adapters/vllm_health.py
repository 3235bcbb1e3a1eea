"""Health passes over the vLLM replicas: out of rotation while down, adapters back after.

A vLLM server forgets its runtime LoRA loads when it restarts (vLLM RFC #12174), and a
replica that was down when a group adapter was published never had it. Requests find
that out one at a time (``VllmBackend._replica_for`` loads on demand, past a deadline
they fall back); a health pass finds it first: it asks each replica for its model list
and loads again what the placements say it should hold. ``HealthChecks`` runs a pass
every few seconds in a daemon thread (``ATTUNE_MODEL__VLLM_HEALTH_INTERVAL_S``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from adapters.errors import AdapterNotFoundError
from adapters.vllm_replicas import Replica, ReplicaDownError

log = logging.getLogger(__name__)


class Placer(Protocol):
    """What a health pass needs from the backend's placement table."""

    def wanted_on(self, url: str) -> Mapping[str, str]:
        """The adapters (name → path) the replica at ``url`` should hold."""
        ...

    def mark_placed(self, name: str, url: str, *, held: bool) -> None:
        """Record whether the replica at ``url`` holds adapter ``name``."""
        ...


def reconcile(replicas: Sequence[Replica], placer: Placer) -> int:
    """One pass: each answering replica gets back the adapters it should hold.

    A replica that does not answer is left out of rotation (``Replica.models`` marks it
    down) until a later pass or request finds it answering. An adapter whose files a
    replica refuses is taken off that replica's placement, never half-loaded.

    Returns:
        How many adapters were loaded again.
    """
    reloaded = 0
    for replica in replicas:
        models = replica.models(fresh=True)
        if models is None:
            continue
        for name, path in placer.wanted_on(replica.url).items():
            if name in models:
                continue
            try:
                replica.load(name, path)
            except ReplicaDownError:
                break
            except AdapterNotFoundError:
                log.warning("adapter %s could not be reloaded on %s", name, replica)
                placer.mark_placed(name, replica.url, held=False)
                continue
            reloaded += 1
            log.info("adapter %s reloaded on %s by the health check", name, replica)
            placer.mark_placed(name, replica.url, held=True)
    return reloaded


class HealthChecks:
    """Calls ``check`` every ``interval_s`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(self, check: Callable[[], object], interval_s: float) -> None:
        """Start the thread (the first pass runs after one interval)."""
        self._stopping = threading.Event()
        self._check = check
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._loop, name="vllm-health", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self._check()
            except Exception:  # a failed pass must not end the checks
                log.exception("vLLM health check failed")

    def stop(self) -> None:
        """End the thread (waits for a pass in progress, at most 5 s)."""
        self._stopping.set()
        self._thread.join(timeout=5)
