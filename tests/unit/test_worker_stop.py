"""What a stopping embedded worker does with tasks it cannot wait for (no broker, no server).

The whole path, with `attune serve`, a signal and a restart, is in
``tests/integration/test_workers.py``.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from memory.config import DatabaseSettings
from memory.records import db, jobs
from workers.embedded_pool import DaemonExecutor
from workers.inflight import INTERRUPTED, InFlight

STALE = timedelta(seconds=30)


def _engine(tmp_path) -> Engine:
    engine = db.make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}"))
    db.upgrade(engine)
    return engine


def _running(engine: Engine, key: str, worker: str) -> str:
    job, _ = jobs.create(engine, kind="distill", key=key, queue="light", payload={}, user_id=None)
    assert jobs.claim(engine, job.id, worker=worker, stale_after=STALE, max_attempts=3)
    return job.id


def test_a_held_job_is_released_back_to_queued_without_counting_the_attempt(tmp_path) -> None:
    engine = _engine(tmp_path)
    in_flight = InFlight()
    held = _running(engine, "held", "w1")
    other = _running(engine, "other", "w2")  # another worker's: not this process's to release
    with in_flight.holding(held, "w1"):
        assert in_flight.held() == [held]
        assert in_flight.release_all(engine) == [held]
        assert in_flight.given_up.is_set()
        # The task's own report is refused: the job is no longer its run.
        assert not jobs.finish(engine, held, worker="w1", result={"late": True})
        assert in_flight.was_released(held) and not in_flight.was_released(held)
    assert in_flight.held() == []
    job = jobs.get(engine, held)
    assert job is not None
    assert (job.status, job.attempts, job.error, job.heartbeat_at) == (
        "queued",
        0,
        INTERRUPTED,
        None,
    )
    # The next delivery claims it as a first attempt, and clears the error.
    again = jobs.claim(engine, held, worker="w3", stale_after=STALE, max_attempts=3)
    assert again is not None and (again.attempts, again.error) == (1, None)
    untouched = jobs.get(engine, other)
    assert untouched is not None and untouched.status == "running"


def test_a_job_that_ended_before_its_release_keeps_its_outcome(tmp_path) -> None:
    engine = _engine(tmp_path)
    in_flight = InFlight()
    job_id = _running(engine, "done", "w1")
    with in_flight.holding(job_id, "w1"):
        assert jobs.finish(engine, job_id, worker="w1", result={"ok": True})
        assert in_flight.release_all(engine) == []
    assert not in_flight.was_released(job_id)
    job = jobs.get(engine, job_id)
    assert job is not None and (job.status, job.attempts) == ("succeeded", 1)


def test_the_executor_runs_calls_on_daemon_threads_up_to_its_limit() -> None:
    executor = DaemonExecutor(2)
    seen: list[threading.Thread] = []
    release = threading.Event()

    def call(n: int) -> int:
        seen.append(threading.current_thread())
        release.wait(5)
        return n * 2

    futures = [executor.submit(call, n) for n in range(3)]
    time.sleep(0.2)
    assert len(seen) == 2  # the third waits for a free thread
    release.set()
    assert [f.result(timeout=5) for f in futures] == [0, 2, 4]
    assert all(t.daemon for t in seen) and len(set(seen)) == 2
    executor.wait_idle(threading.Event())
    executor.shutdown(wait=True)
    assert not any(t.is_alive() for t in seen)


def test_a_stop_that_gives_up_leaves_running_calls_and_cancels_queued_ones() -> None:
    executor = DaemonExecutor(1)
    hold = threading.Event()
    running = executor.submit(hold.wait, 30)
    queued = executor.submit(lambda: "never")
    given_up = threading.Event()
    waiter = threading.Thread(target=executor.wait_idle, args=(given_up,))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # a warm stop waits for the running call...
    given_up.set()
    waiter.join(2)
    assert not waiter.is_alive()  # ...until the worker gives up on it
    executor.shutdown(wait=False)
    assert queued.cancelled() and running.running()
    hold.set()
    assert running.result(timeout=5) is True
