"""Admission of chat turns: a bounded queue in front of generation, and per-user caps.

Every turn (a chat or a regeneration) takes a slot before it starts and holds it until its
task ends, however it ends. At most ``ATTUNE_SERVER__MAX_CONCURRENT_TURNS`` hold one; up
to ``…__MAX_QUEUED`` more wait for one, first come first served. A request that finds the
queue full, or that waited ``…__QUEUE_TIMEOUT_S`` without a slot, is answered 503 with
``Retry-After``; one whose user already has ``…__MAX_TURNS_PER_USER`` turns running or
waiting is answered 429. Both happen before the turn is prepared, so a refused request
records nothing, and before a streamed response's first byte, so it gets the status.

The bounds are per server process: each process admits its own share, and a load
balancer spreads the rest (``GET /readyz`` tells it when this one is saturated).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from api.limits import Quota, RateLimiter, Refused, key_id, make_limiter
from api.metrics import Metrics
from api.services import AppServices
from graph.runner import TurnStream

_EWMA = 0.2
"""Weight of the newest turn in the running estimate of a turn's duration."""


class Slot:
    """A turn's permission to run; released exactly once."""

    def __init__(self, admission: Admission, user_id: str) -> None:
        """Held by ``user_id`` from now on."""
        self.admission = admission
        self.user_id = user_id
        self.since = admission.clock()
        self.released = False

    def release(self) -> None:
        """Give the slot to the next waiting turn (idempotent)."""
        if not self.released:
            self.released = True
            self.admission._release(self)

    def hold_until(self, task: asyncio.Task[Any]) -> None:
        """Keep the slot until ``task`` ends (the turn outlives a client that hangs up)."""
        task.add_done_callback(lambda _: self.release())


class Admission:
    """The bounded queue and the per-user caps of one server process."""

    def __init__(
        self,
        *,
        max_running: int,
        max_queued: int,
        queue_timeout_s: float,
        max_per_user: int = 0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Admit ``max_running`` turns at once and queue ``max_queued`` (0: no per-user cap)."""
        self.max_running = max_running
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.max_per_user = max_per_user
        self.metrics = metrics
        self.clock = clock
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._per_user: dict[str, int] = {}
        self._turn_s = 5.0
        """Running estimate of how long a turn holds its slot, for ``Retry-After``."""

    @property
    def queued(self) -> int:
        """Turns waiting for a slot."""
        return len(self._waiters)

    @property
    def saturated(self) -> bool:
        """Whether the next turn would be refused for a full queue."""
        return self.running >= self.max_running and self.queued >= self.max_queued

    def snapshot(self) -> dict[str, Any]:
        """The figures ``/readyz`` reports."""
        return {
            "running": self.running,
            "queued": self.queued,
            "max_running": self.max_running,
            "max_queued": self.max_queued,
            "saturated": self.saturated,
        }

    def retry_after_s(self, ahead: int) -> float:
        """A guess at when a slot frees for a turn with ``ahead`` turns before it (1-60 s)."""
        return min(60.0, max(1.0, self._turn_s * (ahead + 1) / self.max_running))

    async def acquire(self, user_id: str) -> Slot:
        """A slot for one of ``user_id``'s turns, waiting in the queue for it if need be.

        Raises:
            Refused: 429 at the user's cap; 503 when the queue is full or the wait ran out.
        """
        held = self._per_user.get(user_id, 0)
        if self.max_per_user and held >= self.max_per_user:
            raise self._refuse(
                429,
                f"this user already has {held} turns running or waiting, the most one user "
                f"may have at once ({self.max_per_user}); wait for one to finish",
                type="rate_limit_error",
                reason="user_cap",
                retry_after_s=self.retry_after_s(0),
            )
        if self.running < self.max_running and not self._waiters:
            self.running += 1
            self._per_user[user_id] = held + 1
            return self._granted(user_id, waited=0.0)
        if len(self._waiters) >= self.max_queued:
            raise self._refuse(
                503,
                f"the server is at capacity ({self.running} turns generating, "
                f"{self.queued} waiting); retry after the Retry-After header",
                type="server_overloaded",
                reason="queue_full",
                retry_after_s=self.retry_after_s(self.queued),
            )
        return await self._wait(user_id)

    async def _wait(self, user_id: str) -> Slot:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        self._gauges()
        started = self.clock()
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await waiter
        except BaseException as exc:
            self._drop_user(user_id)
            if waiter.done() and not waiter.cancelled():
                self._pass_on()  # granted just as the wait ended: hand the slot on
            else:
                waiter.cancel()
                if waiter in self._waiters:  # a release may have skipped it out already
                    self._waiters.remove(waiter)
            self._gauges()
            if isinstance(exc, TimeoutError):
                if self.metrics is not None:
                    self.metrics.queue_wait_seconds.observe(self.clock() - started)
                raise self._refuse(
                    503,
                    f"no generation slot came free within {self.queue_timeout_s:g} s; the "
                    "server is overloaded, retry after the Retry-After header",
                    type="server_overloaded",
                    reason="queue_timeout",
                    retry_after_s=self.retry_after_s(self.queued),
                ) from None
            raise
        return self._granted(user_id, waited=self.clock() - started)

    async def start(
        self, user_id: str, starter: Callable[[], Awaitable[tuple[TurnStream, str]]]
    ) -> tuple[TurnStream, str]:
        """Admit one of ``user_id``'s turns, then start it with ``starter``.

        The slot is held until the turn's task ends, or released at once if ``starter``
        fails (an invalid request, a thread that does not exist).
        """
        slot = await self.acquire(user_id)
        try:
            stream, reply_id = await starter()
        except BaseException:
            slot.release()
            raise
        slot.hold_until(stream.task)
        return stream, reply_id

    def _granted(self, user_id: str, *, waited: float) -> Slot:
        if self.metrics is not None:
            self.metrics.queue_wait_seconds.observe(waited)
        self._gauges()
        return Slot(self, user_id)

    def _release(self, slot: Slot) -> None:
        held = self.clock() - slot.since
        self._turn_s += _EWMA * (held - self._turn_s)
        self._drop_user(slot.user_id)
        self._pass_on()

    def _pass_on(self) -> None:
        """A slot came free: the first turn still waiting takes it, else it is freed."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._gauges()
                return
        self.running -= 1
        self._gauges()

    def _drop_user(self, user_id: str) -> None:
        left = self._per_user.get(user_id, 0) - 1
        if left > 0:
            self._per_user[user_id] = left
        else:
            self._per_user.pop(user_id, None)

    def _gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self.queued)
            self.metrics.running_turns.set(self.running)

    def _refuse(self, status: int, message: str, **kwargs: Any) -> Refused:
        refused = Refused(status, message, **kwargs)
        if self.metrics is not None:
            self.metrics.refused.labels(reason=refused.reason).inc()
        return refused


class ChatGate:
    """What a chat request passes before its turn starts: rate limits, then admission.

    Built once per app, on first use (:func:`gate_of`).
    """

    def __init__(
        self, admission: Admission, limiter: RateLimiter | None, metrics: Metrics | None
    ) -> None:
        """Use ``admission`` and ``limiter`` (``None``: no rate limits)."""
        self.admission = admission
        self.limiter = limiter
        self.metrics = metrics

    @classmethod
    def for_services(cls, services: AppServices) -> ChatGate:
        """The gate the settings ask for, counting into the services' metrics."""
        server = services.settings.server
        admission = Admission(
            max_running=server.max_concurrent_turns,
            max_queued=server.max_queued,
            queue_timeout_s=server.queue_timeout_s,
            max_per_user=server.max_turns_per_user,
            metrics=services.metrics,
        )
        limiter = make_limiter(server, services.settings.worker.broker_url)
        return cls(admission, limiter, services.metrics)

    async def charge(self, authorization: str, tokens: int) -> Quota | None:
        """Charge the request to its key's buckets; ``None`` when no limits are set.

        Raises:
            Refused: 429, a bucket is dry (its ``headers`` go on the response).
        """
        if self.limiter is None:
            return None
        quota = await self.limiter.charge(key_id(authorization), tokens)
        if not quota.allowed:
            if self.metrics is not None:
                self.metrics.refused.labels(reason="rate_limited").inc()
            raise quota.refusal()
        return quota

    async def aclose(self) -> None:
        """Release the limiter's connections."""
        if self.limiter is not None:
            await self.limiter.aclose()


def gate_of(app: FastAPI) -> ChatGate:
    """The app's gate, built on first use from its services' settings."""
    gate: ChatGate | None = getattr(app.state, "chat_gate", None)
    if gate is None:
        gate = app.state.chat_gate = ChatGate.for_services(app.state.services)
    return gate


async def close_gate(app: FastAPI) -> None:
    """Release the gate's connections (at shutdown), if it was built."""
    gate: ChatGate | None = getattr(app.state, "chat_gate", None)
    if gate is not None:
        await gate.aclose()
        app.state.chat_gate = None


async def backend_available(services: AppServices) -> bool:
    """Whether the backend can take a turn now: vLLM needs a replica that answers.

    The ``ChatBackend`` protocol has no health check; a vLLM backend's replicas keep their
    model lists cached for a few seconds, so asking them is cheap, and bounded here.
    """
    replicas = getattr(services.backend, "replicas", None)
    if not replicas or services.settings.model.vllm_fallback == "local":
        return True

    def any_up() -> bool:
        return any(replica.is_up() for replica in replicas)

    try:
        return await asyncio.wait_for(asyncio.to_thread(any_up), timeout=2.0)
    except TimeoutError:
        return False


async def readiness(app: FastAPI) -> tuple[bool, dict[str, Any]]:
    """Whether the server should get traffic now, and why: saturation and the backend."""
    services: AppServices = app.state.services
    admission = gate_of(app).admission
    available = await backend_available(services)
    ready = available and not admission.saturated
    reason = None if ready else ("backend unavailable" if not available else "queue full")
    body = {
        "ready": ready,
        **admission.snapshot(),
        "backend": services.backend.name,
        "backend_available": available,
        "reason": reason,
    }
    return ready, body
