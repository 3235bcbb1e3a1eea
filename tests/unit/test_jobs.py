"""Job records (claim, heartbeat, attempts) on SQLite, and the periodic summaries job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, update

from memory.config import DatabaseSettings
from memory.records import db, jobs
from memory.records.jobs import Job
from memory.records.tables import utcnow
from tests.conftest import Api

STALE = timedelta(seconds=30)


def _engine(tmp_path) -> Engine:
    engine = db.make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}"))
    db.upgrade(engine)
    return engine


def test_a_job_is_created_once_per_key_and_claimed_once(tmp_path) -> None:
    engine = _engine(tmp_path)
    job, created = jobs.create(
        engine, kind="distill", key="k", queue="light", payload={}, user_id=None
    )
    again, created_again = jobs.create(
        engine, kind="distill", key="k", queue="light", payload={"x": 1}, user_id=None
    )
    assert created and not created_again and again.id == job.id and again.payload == {}
    first = jobs.claim(engine, job.id, worker="w1", stale_after=STALE, max_attempts=5)
    assert first is not None and first.status == "running" and first.attempts == 1
    # A second delivery while w1's heartbeat is fresh does nothing.
    assert jobs.claim(engine, job.id, worker="w2", stale_after=STALE, max_attempts=5) is None
    assert jobs.heartbeat(engine, job.id, worker="w1", progress=0.5)
    # w1 dies: once its heartbeat is stale, w2 takes over; w1 can no longer report.
    with Session(engine) as s:
        s.exec(update(Job).values(heartbeat_at=utcnow() - 2 * STALE))
        s.commit()
    second = jobs.claim(engine, job.id, worker="w2", stale_after=STALE, max_attempts=5)
    assert second is not None and second.attempts == 2 and second.worker == "w2"
    assert not jobs.finish(engine, job.id, worker="w1", result={"by": "w1"})
    assert jobs.finish(engine, job.id, worker="w2", result={"by": "w2"})
    done = jobs.get(engine, job.id)
    assert done is not None and (done.status, done.result, done.progress) == (
        "succeeded",
        {"by": "w2"},
        1.0,
    )
    assert jobs.claim(engine, job.id, worker="w3", stale_after=STALE, max_attempts=5) is None


def test_a_job_whose_workers_keep_dying_fails_with_its_error(tmp_path) -> None:
    engine = _engine(tmp_path)
    job, _ = jobs.create(engine, kind="distill", key="k2", queue="light", payload={}, user_id="u")
    for attempt in (1, 2):
        assert jobs.claim(engine, job.id, worker=f"w{attempt}", stale_after=STALE, max_attempts=2)
        with Session(engine) as s:
            s.exec(update(Job).values(heartbeat_at=utcnow() - 2 * STALE))
            s.commit()
    assert jobs.claim(engine, job.id, worker="w3", stale_after=STALE, max_attempts=2) is None
    failed = jobs.get(engine, job.id)
    assert failed is not None and failed.status == "failed" and "2 attempts" in (failed.error or "")
    assert [j.id for j in jobs.list_jobs(engine, user_id="u", status="failed")] == [job.id]
    # A retry keeps the error visible while the job waits.
    retry, _ = jobs.create(engine, kind="distill", key="k3", queue="light", payload={}, user_id="u")
    jobs.claim(engine, retry.id, worker="w", stale_after=STALE, max_attempts=5)
    assert jobs.finish(engine, retry.id, worker="w", error="boom", retry=True)
    waiting = jobs.get(engine, retry.id)
    assert waiting is not None and (waiting.status, waiting.error) == ("queued", "boom")


async def test_the_periodic_summaries_job_summarizes_ended_sessions(worker_api: Api) -> None:
    api = worker_api
    uid, key = api.new_user()
    body = {
        "sessions": [
            {
                "id": "old",
                "started_at": "2025-01-10T09:00:00Z",
                "turns": [
                    {"id": "o1", "role": "user", "content": "I am planning a trip to Kyoto."},
                    {"id": "o2", "role": "assistant", "content": "Lovely, when?"},
                ],
            }
        ]
    }
    r = await api.client.post(f"/v1/users/{uid}/history", json=body, headers=api.auth(key))
    assert r.status_code == 200
    job = api.services.jobs.submit("summaries", key="summaries:test", payload={}, user_id=None)
    done = await api.wait_job(job.id)
    assert done["status"] == "succeeded" and done["result"]["summaries_written"] == 1, done
    again = api.services.jobs.submit("summaries", key="summaries:test-2", payload={}, user_id=None)
    assert (await api.wait_job(again.id))["result"]["summaries_written"] == 0  # idempotent
    r = await api.client.get(
        f"/v1/users/{uid}/memories", params={"kind": "summary"}, headers=api.auth(key)
    )
    assert "Kyoto" in r.json()["data"][0]["text"]
