"""Adapter placement at scale, simulated: Zipf users, group adapters, replicas with LRU slots.

``attune bench placement`` plans the product's scale on paper, before there are replicas to
measure. A population of ``users`` (1 million by default) sends requests whose user is
drawn from a Zipf distribution (exponent ``zipf_s``: a few users send most requests). The
most active ``own_share`` of users have their own adapter (they have the data to train
one); everyone else is served by their group's adapter (``groups``, 10,000 by default,
users assigned by hash). Each of ``replicas`` replicas holds at most ``capacity`` adapters
and evicts the least recently used one to load another (a cold load).

Two routings are compared in the same run:

* ``affinity``: each adapter has one home replica (rendezvous hashing), as Attune's
  placement does, so an adapter is loaded in one place and its requests batch together;
* ``spread``: each request goes to any replica (round robin), as a load balancer that
  knows nothing of adapters would send it.

For each, it reports, in the steady state (the first half of the requests warms the
caches), the hit rate (the request's adapter was loaded), cold loads per
second at ``rps`` requests per second, and the mean number of distinct adapters in a batch
of ``batch`` consecutive requests on one replica (fewer is faster: vLLM's multi-LoRA cost
grows with the distinct adapters in a batch). Replicas needed is the smallest replica count
in the sweep whose per-replica load is at most ``replica_rps`` and whose hit rate is at
least ``min_hit``. All of it is a simulation: throughput is measured by
``attune bench serving``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Population:
    """Who asks, how often, and which adapter serves them."""

    users: int = 1_000_000
    groups: int = 10_000
    own_share: float = 0.02
    zipf_s: float = 1.0


@dataclass
class RoutingResult:
    """One routing's figures at one replica count."""

    routing: str
    replicas: int
    requests: int
    hits: int
    distinct_per_batch: float

    @property
    def hit_rate(self) -> float:
        """Share of requests whose adapter was already loaded on their replica."""
        return self.hits / self.requests if self.requests else 0.0

    def cold_loads_per_s(self, rps: float) -> float:
        """Cold loads per second at ``rps`` requests per second."""
        return (1.0 - self.hit_rate) * rps

    def as_dict(self, rps: float) -> dict[str, Any]:
        """The figures as plain data."""
        return {
            "routing": self.routing,
            "replicas": self.replicas,
            "hit_rate": round(self.hit_rate, 4),
            "cold_loads_per_s": round(self.cold_loads_per_s(rps), 2),
            "distinct_adapters_per_batch": round(self.distinct_per_batch, 2),
        }


def adapter_stream(pop: Population, requests: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """The adapter (an id) each of ``requests`` requests needs.

    Ids ``0..own-1`` are users' own adapters, then ``own..own+groups-1`` group adapters.
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, pop.users + 1, dtype=np.float64)
    weights = ranks**-pop.zipf_s
    cdf = np.cumsum(weights / weights.sum())
    users = np.minimum(np.searchsorted(cdf, rng.random(requests)), pop.users - 1)
    own = int(pop.users * pop.own_share)
    group_of = _hash_ints(users, pop.groups, salt="group")
    return np.where(users < own, users, own + group_of)


def _hash_ints(values: np.ndarray[Any, Any], buckets: int, *, salt: str) -> Any:
    """A stable hash of each integer into ``buckets`` (splitmix-style, vectorized)."""
    seed = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little")
    x = values.astype(np.uint64) ^ np.uint64(seed)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(buckets)).astype(np.int64)


def replica_slice(pop: Population, *, replicas: int, requests: int, seed: int = 0) -> list[int]:
    """``requests`` consecutive adapter ids as one replica sees them under affinity routing.

    The population's stream (``adapter_stream``, enough of it for ``requests`` to reach
    replica 0) routed by home replica; the second half of what reaches replica 0, past the
    warm-up, so the slice is what a serving replica's batches are made of.
    """
    stream = adapter_stream(pop, requests * replicas * 3, seed)
    unique, inverse = np.unique(stream, return_inverse=True)
    mine = stream[home_replicas(unique, replicas)[inverse] == 0]
    start = len(mine) // 2
    return [int(a) for a in mine[start : start + requests]]


def home_replicas(adapters: np.ndarray[Any, Any], replicas: int) -> Any:
    """Each adapter's home replica by rendezvous (highest random weight) hashing."""
    scores = np.stack([_hash_ints(adapters, 2**31, salt=f"replica:{r}") for r in range(replicas)])
    return np.argmax(scores, axis=0)


def simulate(
    stream: np.ndarray[Any, Any],
    *,
    replicas: int,
    capacity: int,
    routing: str,
    batch: int = 32,
    warmup: float = 0.5,
) -> RoutingResult:
    """Route ``stream`` to ``replicas`` LRU caches of ``capacity`` adapters each.

    The first ``warmup`` share of the stream fills the caches and is not counted: the
    figures are the steady state, not the first minutes after every replica started empty.
    """
    if routing == "affinity":
        unique, inverse = np.unique(stream, return_inverse=True)
        where = home_replicas(unique, replicas)[inverse]
    elif routing == "spread":
        where = np.arange(len(stream)) % replicas
    else:
        raise ValueError(f"unknown routing {routing!r}")
    caches: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(replicas)]
    pending: list[list[int]] = [[] for _ in range(replicas)]
    hits = 0
    batches: list[int] = []
    start = int(len(stream) * warmup)
    for i, (adapter, replica) in enumerate(zip(stream.tolist(), where.tolist(), strict=True)):
        cache = caches[replica]
        if adapter in cache:
            hits += i >= start
            cache.move_to_end(adapter)
        else:
            cache[adapter] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
        queue = pending[replica]
        queue.append(adapter)
        if len(queue) == batch:
            if i >= start:
                batches.append(len(set(queue)))
            queue.clear()
    distinct = float(np.mean(batches)) if batches else 0.0
    return RoutingResult(routing, replicas, len(stream) - start, hits, distinct)


def plan(
    pop: Population,
    *,
    requests: int = 500_000,
    capacities: Sequence[int] = (64, 512, 2048),
    replica_counts: Sequence[int] = (8, 16, 32, 64, 128),
    rps: float = 1000.0,
    replica_rps: float = 40.0,
    min_hit: float = 0.95,
    batch: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Simulate both routings at each capacity and replica count; figures and replicas needed.

    ``capacities`` are adapters held per replica: vLLM's ``--max-loras`` bounds those in
    one batch, ``--max-cpu-loras`` those kept loaded in host memory (a rank-8 adapter of a
    7B model is about 20 MB, so thousands fit).
    """
    stream = adapter_stream(pop, requests, seed)
    rows = []
    needed: dict[str, int | None] = {}
    for capacity in capacities:
        for routing in ("affinity", "spread"):
            needed[f"{routing}@{capacity}"] = None
            for count in replica_counts:
                result = simulate(
                    stream, replicas=count, capacity=capacity, routing=routing, batch=batch
                )
                rows.append({"capacity": capacity, **result.as_dict(rps)})
                ok = rps / count <= replica_rps and result.hit_rate >= min_hit
                if ok and needed[f"{routing}@{capacity}"] is None:
                    needed[f"{routing}@{capacity}"] = count
    return {
        "population": vars(pop),
        "requests_simulated": requests,
        "distinct_adapters_requested": len(np.unique(stream)),
        "own_adapter_request_share": round(
            float(np.mean(stream < int(pop.users * pop.own_share))), 4
        ),
        "rps": rps,
        "replica_rps": replica_rps,
        "min_hit_rate": min_hit,
        "rows": rows,
        "replicas_needed": needed,
    }


def table(figures: dict[str, Any]) -> str:
    """The plan as printable text."""
    pop = figures["population"]
    lines = [
        f"Placement simulation: {pop['users']:,} users (Zipf s={pop['zipf_s']}), "
        f"{pop['groups']:,} group adapters, {pop['own_share']:.0%} of users with their own "
        f"({figures['own_adapter_request_share']:.0%} of requests); "
        f"{figures['requests_simulated']:,} requests "
        f"({figures['distinct_adapters_requested']:,} distinct adapters); at "
        f"{figures['rps']:.0f} req/s",
        f"{'capacity':>8}{'replicas':>9}  {'routing':<9}{'hit rate':>9}{'cold loads/s':>14}"
        f"{'distinct/batch':>16}",
    ]
    for row in figures["rows"]:
        lines.append(
            f"{row['capacity']:>8}{row['replicas']:>9}  {row['routing']:<9}"
            f"{row['hit_rate']:>9.3f}{row['cold_loads_per_s']:>14.1f}"
            f"{row['distinct_adapters_per_batch']:>16.1f}"
        )
    needed = ", ".join(f"{k} {v}" for k, v in figures["replicas_needed"].items())
    lines.append(
        f"replicas needed for {figures['rps']:.0f} req/s at ≤{figures['replica_rps']:.0f} "
        f"req/s each and hit rate ≥{figures['min_hit_rate']:.2f} (routing@capacity; None: "
        f"not within the sweep): {needed}"
    )
    return "\n".join(lines)
