"""Workers against the real thing: Celery worker processes on Redis, and `attune serve` with
its embedded worker on the SQLite broker, killed and restarted.

Redis tests use database 11, and every run its own queue names and key prefix, so runs in
parallel do not take each other's tasks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from memory.records import db, jobs
from tests.conftest import ADMIN_KEY, MODEL_CACHE, REPO_ROOT, open_api
from tests.fakes import ScriptedBackend
from wiring.settings import Settings
from workers.app import make_celery

ATTUNE = str(Path(sys.executable).with_name("attune"))
CHROMA = str(Path(sys.executable).with_name("chroma"))
REDIS_DB = 11
SLOW_TASKS = "tests.integration.worker_slow"
HOLD_TASKS = "tests.integration.worker_hold"


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> str:
    """A Redis broker URL (the server is started when it is not answering)."""
    if not _redis_answers():
        subprocess.run(
            "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
            "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
            shell=True,
            check=False,
        )
        _wait(_redis_answers, 20, "redis-server")
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    """A Chroma server, as scale-out workers share one."""
    port = _free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [
            CHROMA,
            "run",
            "--path",
            str(tmp_path / "chroma"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _wait(up, 60, "the Chroma server")
    yield url
    proc.terminate()
    proc.wait(10)


def _worker_settings(**extra: Any) -> dict[str, Any]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    return {
        "queue_prefix": prefix,
        "redis_key_prefix": prefix,
        "embedded": False,
        "poll_interval_s": 0.05,
        **extra,
    }


def _env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE_")}
    env.update(
        ATTUNE_DATA_DIR=str(settings.data_dir),
        ATTUNE_ADMIN_KEY=ADMIN_KEY,
        ATTUNE_DB__URL=settings.database_url,
        ATTUNE_MODEL__CACHE_DIR=str(MODEL_CACHE),
        ATTUNE_LOG_LEVEL="INFO",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        OMP_WAIT_POLICY="PASSIVE",
    )
    if settings.memory.vector_url:
        env["ATTUNE_MEMORY__VECTOR_URL"] = settings.memory.vector_url
    w = settings.worker
    for name in (
        "broker_url",
        "queue_prefix",
        "redis_key_prefix",
        "visibility_timeout_s",
        "heartbeat_s",
        "stale_after_s",
        "poll_interval_s",
        "embedded",
    ):
        value = getattr(w, name)
        if value is not None:
            env[f"ATTUNE_WORKER__{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    env["ATTUNE_WORKER__INCLUDE"] = f'["{SLOW_TASKS}", "{HOLD_TASKS}"]'
    return env


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [ATTUNE, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return _spawn(
        ["worker", "--queue", "light", "--pool", "threads", "--concurrency", "1"], env, log
    )


# ---- Redis: scale-out ----------------------------------------------------------------


async def test_a_turns_distillation_lands_through_a_redis_worker(
    tmp_path: Path, redis_url: str, postgres_db: str, chroma_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        model={"cache_dir": MODEL_CACHE},
        db={"url": postgres_db.replace("postgresql://", "postgresql+psycopg://")},
        memory={"vector_url": chroma_url},
        worker=_worker_settings(broker_url=redis_url),
    )
    log = tmp_path / "worker.log"
    async for api in open_api(settings, ScriptedBackend()):
        worker = _worker(_env(settings), log)
        try:
            uid, key = api.new_user()
            r = await api.client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "I live in Lisbon."}]},
                headers=api.auth(key),
            )
            assert r.status_code == 200, r.text
            (job,) = jobs.list_jobs(api.services.engine, kind="distill")
            assert job.user_id == uid
            done = await api.wait_job(job.id, within=120)
            assert done["status"] == "succeeded", (done, log.read_text()[-3000:])
            assert done["result"]["memories_written"] >= 1
            r = await api.client.get(
                f"/v1/users/{uid}/memories/search",
                params={"q": "which city do I live in", "kind": "fact"},
                headers=api.auth(key),
            )
            assert any("Lisbon" in m["text"] for m in r.json()["data"]), r.json()
            # Someone else's key cannot read the job.
            _, other = api.new_user("eve")
            r = await api.client.get(f"/v1/jobs/{job.id}", headers=api.auth(other))
            assert r.status_code == 404
            r = await api.client.get(f"/v1/jobs/{job.id}", headers=api.auth(key))
            assert r.json()["status"] == "succeeded"
        finally:
            _stop(worker)


def test_a_worker_killed_mid_task_has_it_redelivered_and_done_once(
    tmp_path: Path, redis_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        worker=_worker_settings(
            broker_url=redis_url, visibility_timeout_s=3, heartbeat_s=0.5, stale_after_s=2
        ),
    )
    engine = db.open_engine(settings.db)
    out = tmp_path / "out"
    out.mkdir()
    queue = settings.worker.queue_name("light")
    job, _ = jobs.create(
        engine,
        kind="test_slow",
        key=f"slow:{uuid.uuid4().hex}",
        queue=queue,
        payload={"dir": str(out), "seconds": 60},
        user_id=None,
    )
    app = make_celery(settings)
    app.send_task("attune.test_slow", args=[job.id], queue=queue)
    env, log = _env(settings), tmp_path / "worker.log"
    first = _worker(env, log)
    try:
        _wait(lambda: (out / "started-1").exists(), 90, "the first attempt to start")
    finally:
        _stop(first, signal.SIGKILL)
    running = jobs.get(engine, job.id)
    assert running is not None and running.status == "running"
    second = _worker(env, log)
    try:
        finished = _wait(
            lambda: (j := jobs.get(engine, job.id)) is not None and j.status == "succeeded" and j,
            90,
            "the redelivered task",
        )
        assert finished.attempts == 2 and finished.result == {"attempt": 2}
        assert (out / "done.txt").read_text().split() == [job.id]
        # Yet another delivery of the same job finds the work done and does nothing.
        app.send_task("attune.test_slow", args=[job.id], queue=queue)
        _wait(lambda: "not claimed (succeeded)" in log.read_text(), 30, "the extra delivery")
        assert (out / "done.txt").read_text().split() == [job.id]
        again = jobs.get(engine, job.id)
        assert again is not None and again.attempts == 2
    finally:
        _stop(second)
        engine.dispose()


# ---- Embedded: `attune serve` on the SQLite broker ------------------------------------


def _serve(settings: Settings, port: int, log: Path, *, embedded: bool) -> subprocess.Popen[bytes]:
    env = _env(settings)
    env["ATTUNE_WORKER__EMBEDDED"] = "true" if embedded else "false"
    proc = _spawn(["serve", "--port", str(port)], env, log)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"attune serve exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    _wait(up, 120, "attune serve")
    return proc


def test_the_embedded_broker_keeps_queued_work_across_restarts_and_kills(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        worker=_worker_settings(visibility_timeout_s=3, heartbeat_s=0.5, stale_after_s=2),
    )
    port, log = _free_port(), tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    # 1. A server without its worker: work queues up on disk.
    server = _serve(settings, port, log, embedded=False)
    try:
        r = httpx.post(f"{base}/v1/users", json={"name": "ana"}, headers=admin)
        uid, key = r.json()["id"], r.json()["api_key"]
        user = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{base}/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "I adopted a cat named Biscuit."}],
                "max_tokens": 4,
            },
            headers=user,
            timeout=120,
        )
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{base}/v1/users/{uid}/history",
            json={
                "sessions": [
                    {
                        "id": "s1",
                        "started_at": "2026-01-10T09:00:00Z",
                        "turns": [{"id": "t1", "role": "user", "content": "I live in Porto."}],
                    }
                ]
            },
            headers=user,
        )
        assert r.status_code == 200, r.text
    finally:
        _stop(server)
    engine = db.open_engine(settings.db)
    queued = jobs.list_jobs(engine, kind="distill")
    assert len(queued) == 2 and {j.status for j in queued} == {"queued"}

    # 2. Restarted with its worker: the queued jobs run, and their memories are searchable.
    server = _serve(settings, port, log, embedded=True)
    try:
        for j in queued:

            def succeeded(job_id: str = j.id) -> bool:
                r = httpx.get(f"{base}/v1/jobs/{job_id}", headers=user)
                return bool(r.json()["status"] == "succeeded")

            _wait(succeeded, 60, f"job {j.id}")
        r = httpx.get(f"{base}/v1/users/{uid}/memories", params={"kind": "fact"}, headers=user)
        facts = " ".join(m["text"] for m in r.json()["data"])
        assert "Biscuit" in facts and "Porto" in facts, facts

        # 3. A task in hand when the server is killed outright...
        out = tmp_path / "out"
        out.mkdir()
        job, _ = jobs.create(
            engine,
            kind="test_slow",
            key="slow:embedded",
            queue=settings.worker.queue_name("light"),
            payload={"dir": str(out), "seconds": 60},
            user_id=None,
        )
        make_celery(settings).send_task(
            "attune.test_slow", args=[job.id], queue=settings.worker.queue_name("light")
        )
        _wait(lambda: (out / "started-1").exists(), 60, "the slow task to start")
    finally:
        _stop(server, signal.SIGKILL)

    # 4. ... is delivered again after the restart and done once.
    server = _serve(settings, port, log, embedded=True)
    try:
        finished = _wait(
            lambda: (j := jobs.get(engine, job.id)) is not None and j.status == "succeeded" and j,
            60,
            "the slow task after the restart",
        )
        assert finished.attempts == 2
        assert (out / "done.txt").read_text().split() == [job.id]
    finally:
        _stop(server)
        engine.dispose()
