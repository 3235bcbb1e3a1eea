"""Which vLLM replicas hold an adapter: the placement table of ``adapters.vllm_backend``.

A user's adapter lives on its home replicas, ranked by rendezvous hashing; group and hot
adapters are pinned on every replica; beyond a replica's capacity the least recently used
unpinned adapters leave it. :class:`PlacementTable` keeps which files each published name
came from and which replicas hold it, answers the health passes (``adapters.vllm_health``)
and records changes in the shared table (``adapters.placements``); the backend, a
subclass, does the publishing and the routing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from adapters.config import ModelSettings
from adapters.placements import PlacementLog, PlacementState
from adapters.vllm_replicas import Replica, ReplicaDownError

log = logging.getLogger(__name__)


class HasUrl(Protocol):
    """Anything with a replica's URL (``adapters.vllm_replicas.Replica``)."""

    @property
    def url(self) -> str:
        """The replica's base URL."""
        ...


R = TypeVar("R", bound=HasUrl)


def is_group_adapter(name: str) -> bool:
    """Whether adapter ``name`` belongs to a group (pinned on its replicas).

    The registry names adapters after their owner (``adapters.registry.adapter_name``), and
    user ids start with ``usr_``; every other owner is a group.
    """
    return not name.startswith("usr_")


def is_pinned(name: str, hot: str) -> bool:
    """Whether ``name`` is a group adapter, or hot: named, or owned by one named, in ``hot``.

    Args:
        name: The adapter's name.
        hot: Comma-separated adapter names or owner ids (``ModelSettings.vllm_hot``).
    """
    names = [h.strip() for h in hot.split(",") if h.strip()]
    return is_group_adapter(name) or any(name == h or name.startswith(f"{h}-") for h in names)


def home_order(name: str, replicas: Sequence[R]) -> list[R]:
    """``replicas`` ranked for adapter ``name`` by rendezvous hashing, home first.

    Every process ranks alike, and adding a replica moves only the adapters it wins.
    """
    return sorted(
        replicas,
        key=lambda r: hashlib.sha256(f"{r.url}|{name}".encode()).digest(),
        reverse=True,
    )


@dataclass
class Placement:
    """Where one published adapter's files are and which replicas hold it.

    Attributes:
        path: The adapter directory as the replicas see it, or its URL in the store.
        replicas: URLs of the replicas whose model list confirmed the load.
        last_used: ``time.monotonic()`` of the last request routed to it.
    """

    path: str
    replicas: set[str] = field(default_factory=set)
    last_used: float = 0.0


def lru_victims(
    held: Sequence[str],
    *,
    keep: str,
    capacity: int,
    pinned: Callable[[str], bool],
    placements: Mapping[str, Placement],
) -> list[str]:
    """The adapters to unload from a replica holding ``held`` to get within ``capacity``.

    Least recently used first; never ``keep`` nor a pinned adapter (so a replica full of
    pinned adapters stays over capacity).
    """
    evictable = [n for n in held if n != keep and not pinned(n)]
    evictable.sort(key=lambda n: placements[n].last_used if n in placements else 0)
    return evictable[: max(0, len(held) - capacity)]


class PlacementTable:
    """Published adapters (name → :class:`Placement`), the retired names, and their log."""

    def __init__(self, settings: ModelSettings) -> None:
        """An empty table for replicas configured by ``settings``."""
        self.settings = settings
        self.placements: dict[str, Placement] = {}
        self._retired: set[str] = set()
        self._lock = threading.RLock()
        self.placement_log: PlacementLog | None = None
        """Where placement changes are recorded (the shared table; set by the wiring)."""

    def pinned(self, name: str) -> bool:
        """Whether ``name`` is a group or hot adapter: on every replica, never evicted."""
        return is_pinned(name, self.settings.vllm_hot)

    home_order = staticmethod(home_order)

    def wanted_on(self, url: str) -> dict[str, str]:
        """Adapters (name → path) the replica at ``url`` should hold.

        Those placed there, and every group or hot adapter; never a retired one.
        """
        with self._lock:
            return {
                name: p.path
                for name, p in self.placements.items()
                if name not in self._retired and (url in p.replicas or self.pinned(name))
            }

    def mark_placed(self, name: str, url: str, *, held: bool) -> None:
        """Record that the replica at ``url`` holds adapter ``name`` again, or cannot."""
        with self._lock:
            placement = self.placements.get(name)
            if placement is None:
                return
            if held:
                placement.replicas.add(url)
            else:
                placement.replicas.discard(url)
            path = placement.path
        self._record(name, url, "loaded" if held else "failed", path)

    def _record(self, name: str, url: str, state: PlacementState, path: str) -> None:
        if self.placement_log is not None:
            self.placement_log.placed(name, url, state, path)

    def _make_room(self, replica: Replica, *, keep: str) -> None:
        """Unload least recently used adapters from ``replica`` beyond its capacity.

        Group and hot adapters stay pinned (they serve many users); an evicted adapter
        keeps its placement entry, so the next request for it loads it again.
        """
        capacity = self.settings.vllm_adapters_per_replica or self.settings.vllm_max_cpu_loras
        models = replica.models(fresh=True) or {}
        held = [m.id for m in models.values() if m.parent is not None]
        victims = lru_victims(
            held, keep=keep, capacity=capacity, pinned=self.pinned, placements=self.placements
        )
        for name in victims:
            try:
                replica.unload(name)
            except ReplicaDownError:
                return
            log.info("adapter %s unloaded from %s: least recently used", name, replica)
            if name in self.placements:
                self.placements[name].replicas.discard(replica.url)
                self._record(name, replica.url, "evicted", self.placements[name].path)
