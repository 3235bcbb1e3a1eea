"""Fault: the Redis broker killed and restarted while jobs are queued (issue 15).

A Redis that keeps nothing on disk comes back empty: the messages of queued jobs are gone,
and a job submitted while it was down never reached it. The next sweep (beat's
``attune.sweep``) sees the broker lost its data and sends every queued job again, a job
the broker refused goes out with the next message that goes through, and a worker then
runs each job exactly once.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest
import redis

from memory.records import db, jobs
from tests.conftest import ADMIN_KEY
from tests.integration.fault_support import ThrowawayRedis, throwaway_redis, wait_for
from tests.integration.test_workers import _env, _stop, _worker, _worker_settings
from wiring.settings import Settings
from workers import queue as job_queue
from workers.app import make_celery

__all__ = ["throwaway_redis"]  # a fixture used by name


def test_jobs_queued_when_redis_died_are_sent_again_and_run_once(
    tmp_path: Path, throwaway_redis: ThrowawayRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(job_queue.KIND_QUEUE, "test_slow", "light")
    broker = throwaway_redis
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        # Default visibility timeout (1 h): only the lost-broker check can bring them back.
        worker=_worker_settings(broker_url=broker.url),
    )
    engine = db.open_engine(settings.db)
    out = tmp_path / "out"
    out.mkdir()
    q = job_queue.JobQueue(make_celery(settings), engine, settings.worker)
    assert q.sweep() == 0  # the first sweep marks the broker

    def submit() -> jobs.Job:
        payload = {"dir": str(out), "seconds": 0}
        return q.submit("test_slow", key=f"slow:{uuid.uuid4().hex}", payload=payload, user_id=None)

    queued = [submit() for _ in range(3)]  # their messages wait in Redis: no worker yet
    broker.kill()
    started = time.monotonic()
    refused = submit()  # the broker is down: the row is kept, the message is not sent
    assert time.monotonic() - started < 30
    broker.start()  # empty: the three messages are gone
    assert q.sweep() == 4  # every queued job, the refused one included
    assert q.sweep() == 0  # the mark is back: nothing more until the broker loses it

    worker = _worker(_env(settings), tmp_path / "worker.log")
    try:
        ids = {j.id for j in [*queued, refused]}
        wait_for(
            lambda: all((j := jobs.get(engine, i)) and j.status == "succeeded" for i in ids),
            60,
            "the four jobs",
        )
    finally:
        _stop(worker)
        engine.dispose()
    done = (out / "done.txt").read_text().split()
    assert sorted(done) == sorted(ids)  # each ran once, though sent twice


def test_a_job_the_broker_refused_goes_out_with_the_next_message(
    tmp_path: Path, throwaway_redis: ThrowawayRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(job_queue.KIND_QUEUE, "test_slow", "light")
    broker = throwaway_redis
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        worker=_worker_settings(broker_url=broker.url),
    )
    engine = db.open_engine(settings.db)
    q = job_queue.JobQueue(make_celery(settings), engine, settings.worker)
    payload = {"dir": str(tmp_path), "seconds": 0}
    broker.kill()
    refused = q.submit("test_slow", key="slow:refused", payload=payload, user_id=None)
    broker.start()
    following = q.submit("test_slow", key="slow:next", payload=payload, user_id=None)
    engine.dispose()
    name = settings.worker.redis_key_prefix + settings.worker.queue_name("light")
    assert sorted(_job_ids(broker, name)) == sorted([refused.id, following.id])


def _job_ids(broker: ThrowawayRedis, queue: str) -> list[str]:
    """The job ids of the task messages waiting in ``queue`` (kombu's Redis list)."""
    client = redis.Redis(port=broker.port)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in raw]
