"""Backpressure: the bounded turn queue, its wait deadline, per-user caps and readiness.

Turns are held mid-reply with ``ScriptedBackend.gate``, so what is running and queued is
known; the assertions are about statuses and what was recorded, not about timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from api.admission import Admission, gate_of
from api.limits import Refused
from memory.records.tables import Turn
from tests.conftest import Api
from tests.fakes import ScriptedBackend
from wiring.settings import Settings

CHAT = "/v1/chat/completions"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One turn generates at a time and one waits; no per-user cap unless a test sets one."""
    settings.server.max_concurrent_turns = 1
    settings.server.max_queued = 1
    settings.server.max_turns_per_user = 0
    return settings


@pytest.fixture
def gate(api: Api) -> Iterator[asyncio.Event]:
    """For ``backend.gate``: replies wait after their first token until it is set.

    Teardown sets it before the app closes, which waits for running turns, so a failed
    assertion cannot leave the test hanging.
    """
    event = asyncio.Event()
    yield event
    event.set()


def _body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "attune", "messages": [{"role": "user", "content": text}], **extra}


def _turns(api: Api) -> int:
    with Session(api.services.engine) as session:
        return session.exec(select(func.count()).select_from(Turn)).one()


def _refused(api: Api, reason: str) -> float:
    value = api.services.metrics.registry.get_sample_value(
        "attune_refused_requests_total", {"reason": reason}
    )
    return value or 0.0


async def _until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while True:
                if check():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def _post(api: Api, key: str, body: dict[str, Any]) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(api.client.post(CHAT, json=body, headers=api.auth(key)))


async def test_queue_bound_gives_503_with_retry_after(
    api: Api, backend: ScriptedBackend, gate: asyncio.Event
) -> None:
    _, regen_key = api.new_user("regen")
    stored = await api.client.post(CHAT, json=_body("keep me"), headers=api.auth(regen_key))
    assert stored.status_code == 200, stored.text
    before = _turns(api)

    backend.gate = gate
    keys = [api.new_user(f"user{i}")[1] for i in range(2)]
    admission = gate_of(api.app).admission
    running = _post(api, keys[0], _body("one"))
    await _until(lambda: admission.running == 1, "the first turn to run")
    queued = _post(api, keys[1], _body("two", stream=True))
    await _until(lambda: admission.queued == 1, "the second turn to queue")

    over = await api.client.post(CHAT, json=_body("three"), headers=api.auth(keys[1]))
    assert over.status_code == 503, over.text
    assert int(over.headers["Retry-After"]) >= 1
    error = over.json()["error"]
    assert error["type"] == "server_overloaded" and error["code"] == "queue_full"
    assert "capacity" in error["message"]
    streamed = await api.client.post(
        CHAT, json=_body("four", stream=True), headers=api.auth(keys[1])
    )
    assert streamed.status_code == 503 and "Retry-After" in streamed.headers  # not a 200
    regen = await api.client.post(
        CHAT,
        json=_body("(ignored)", attune={"regenerate": stored.json()["attune"]["turn_id"]}),
        headers=api.auth(regen_key),
    )
    assert regen.status_code == 503, regen.text  # regeneration queues like any turn
    assert _refused(api, "queue_full") == 3

    # Liveness stays instant and readiness reports the saturation.
    assert (await api.client.get("/healthz")).status_code == 200
    ready = await api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() | {"ready": False, "running": 1, "queued": 1, "saturated": True} == (
        ready.json()
    )
    assert api.services.metrics.registry.get_sample_value("attune_turn_queue_depth") == 1

    gate.set()
    done = await asyncio.wait_for(asyncio.gather(running, queued), timeout=30)
    assert [r.status_code for r in done] == [200, 200]
    assert done[1].text.rstrip().endswith("data: [DONE]")
    assert _turns(api) == before + 4  # the two admitted exchanges; the refused left nothing
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert (ready.json()["running"], ready.json()["queued"]) == (0, 0)


async def test_a_turn_that_waits_past_the_deadline_gets_503(
    api: Api, backend: ScriptedBackend, settings: Settings, gate: asyncio.Event
) -> None:
    settings.server.queue_timeout_s = 0.2
    backend.gate = gate
    (_, a), (_, b) = api.new_user("a"), api.new_user("b")
    admission = gate_of(api.app).admission
    running = _post(api, a, _body("one"))
    await _until(lambda: len(backend.calls) == 1, "the first turn to generate")
    before = _turns(api)  # its message is stored by now

    late = await api.client.post(CHAT, json=_body("two"), headers=api.auth(b))
    assert late.status_code == 503 and "Retry-After" in late.headers
    assert late.json()["error"]["code"] == "queue_timeout"
    assert admission.queued == 0 and _refused(api, "queue_timeout") == 1
    assert _turns(api) == before

    gate.set()
    assert (await asyncio.wait_for(running, timeout=30)).status_code == 200


async def test_a_users_second_turn_gets_429_while_another_user_is_admitted(
    api: Api, backend: ScriptedBackend, settings: Settings, gate: asyncio.Event
) -> None:
    settings.server.max_turns_per_user = 1
    settings.server.max_concurrent_turns = 2
    backend.gate = gate
    (_, alice), (_, bob) = api.new_user("alice"), api.new_user("bob")
    admission = gate_of(api.app).admission
    first = _post(api, alice, _body("one"))
    await _until(lambda: admission.running == 1, "alice's turn to run")

    second = await api.client.post(CHAT, json=_body("two"), headers=api.auth(alice))
    assert second.status_code == 429 and "Retry-After" in second.headers
    error = second.json()["error"]
    assert error["code"] == "user_cap" and "this user already has 1" in error["message"]
    other = _post(api, bob, _body("three"))
    await _until(lambda: admission.running == 2, "bob's turn to run")
    assert _refused(api, "user_cap") == 1

    gate.set()
    done = await asyncio.wait_for(asyncio.gather(first, other), timeout=30)
    assert [r.status_code for r in done] == [200, 200]
    again = await api.client.post(CHAT, json=_body("four"), headers=api.auth(alice))
    assert again.status_code == 200  # the slot went back when the turn ended


async def test_a_refused_start_gives_its_slot_back(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.post(CHAT, json=_body(thread_id="thr_missing"), headers=api.auth(key))
    assert r.status_code == 404
    admission = gate_of(api.app).admission
    assert (admission.running, admission.queued) == (0, 0)


# -- the controller alone ---------------------------------------------------------------


async def _waiting(admission: Admission, n: int) -> None:
    await _until(lambda: admission.queued == n, f"{n} waiters")


async def test_slots_go_first_come_first_served_and_a_cancelled_waiter_leaves() -> None:
    admission = Admission(max_running=1, max_queued=3, queue_timeout_s=30)
    held = await admission.acquire("u0")
    order: list[str] = []

    async def take(user: str) -> None:
        slot = await admission.acquire(user)
        order.append(user)
        slot.release()

    tasks = {u: asyncio.create_task(take(u)) for u in ("u1", "u2", "u3")}
    await _waiting(admission, 3)
    tasks["u2"].cancel()
    await _waiting(admission, 2)
    held.release()
    await asyncio.gather(tasks["u1"], tasks["u3"])
    assert order == ["u1", "u3"]
    assert (admission.running, admission.queued) == (0, 0)


async def test_a_slot_granted_as_its_waiter_is_cancelled_passes_on() -> None:
    admission = Admission(max_running=1, max_queued=2, queue_timeout_s=30)
    held = await admission.acquire("a")
    waiter = asyncio.create_task(admission.acquire("b"))
    behind = asyncio.create_task(admission.acquire("c"))
    await _waiting(admission, 2)
    held.release()  # grants b's future ...
    waiter.cancel()  # ... but b is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slot = await asyncio.wait_for(behind, timeout=5)  # c got the slot b never used
    assert admission.running == 1
    slot.release()
    assert admission.running == 0


async def test_the_user_cap_counts_queued_turns_too() -> None:
    admission = Admission(max_running=1, max_queued=5, queue_timeout_s=30, max_per_user=2)
    held = await admission.acquire("x")
    queued = asyncio.create_task(admission.acquire("u"))
    await _waiting(admission, 1)
    also = asyncio.create_task(admission.acquire("u"))
    await _waiting(admission, 2)
    with pytest.raises(Refused) as refused:
        await admission.acquire("u")
    assert refused.value.status == 429 and refused.value.reason == "user_cap"
    held.release()
    (await queued).release()
    (await also).release()
    assert (admission.running, admission.queued) == (0, 0)


async def test_start_releases_the_slot_when_the_starter_fails() -> None:
    admission = Admission(max_running=1, max_queued=0, queue_timeout_s=1)

    async def failing() -> Any:
        raise LookupError("no such thread")

    starter: Callable[[], Awaitable[Any]] = failing
    with pytest.raises(LookupError):
        await admission.start("u", starter)
    assert admission.running == 0


async def test_a_waiter_cancelled_just_before_a_slot_frees_is_skipped() -> None:
    admission = Admission(max_running=1, max_queued=2, queue_timeout_s=30)
    held = await admission.acquire("a")
    waiter = asyncio.create_task(admission.acquire("b"))
    await _waiting(admission, 1)
    waiter.cancel()  # its future is cancelled at once; its task runs later
    held.release()  # passes over it: the slot is simply freed
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (admission.running, admission.queued) == (0, 0)
