"""The scale-out topology, all together: two ``attune serve`` processes on PostgreSQL,
Redis and a ``chroma run`` server, a light worker, a heavy worker and beat.

One user's journey crosses every process: a thread whose turns alternate between the two
API processes, facts distilled by the light worker, feedback that makes pairs, a training
job on the heavy worker whose promotion the other API process serves, and a deletion that
leaves nothing in PostgreSQL, Chroma, Redis or the data directory. The model is a tiny
random LM (training takes seconds), shared through the data directory as a deployment
shares a volume or object storage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.integration import canary_support as canary
from tests.integration.test_workers import _env as worker_env
from tests.integration.test_workers import _free_port, chroma_url, redis_url
from tests.integration.test_workers import _spawn as spawn
from tests.integration.test_workers import _stop as stop
from tests.integration.training_support import for_tiny_model, tiny
from wiring.settings import Settings

__all__ = ["chroma_url", "redis_url", "tiny"]  # fixtures

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CANARY = f"zorblat{uuid.uuid4().hex[:6]}"


def _env(settings: Settings) -> dict[str, str]:
    env = worker_env(settings)
    t = settings.training
    env.update(
        ATTUNE_MODEL__BASE_MODEL_DIR=str(settings.model.base_model_dir),
        ATTUNE_TRAINING__DEVICE=t.device,
        ATTUNE_TRAINING__MIN_SFT_EXAMPLES=str(t.min_sft_examples),
        ATTUNE_TRAINING__SFT_MARGIN=str(t.sft_margin),
        ATTUNE_TRAINING__GENERAL_MAX_RISE=str(t.general_max_rise),
        ATTUNE_WORKER__EMBEDDED="false",
    )
    return env


@pytest.fixture
def topology(
    tmp_path: Path, tiny: Path, postgres_db: str, chroma_url: str, redis_url: str
) -> Iterator[tuple[list[str], Settings]]:
    """Two API processes, two workers and beat; yields the API URLs and the settings."""
    prefix = f"s{uuid.uuid4().hex[:8]}-"
    settings = for_tiny_model(
        Settings(
            data_dir=tmp_path / "data",
            admin_key=ADMIN_KEY,
            db={"url": postgres_db.replace("postgresql://", "postgresql+psycopg://")},
            memory={"vector_url": chroma_url},
            worker={
                "broker_url": redis_url,
                "queue_prefix": prefix,
                "redis_key_prefix": prefix,
                "embedded": False,
                "poll_interval_s": 0.05,
            },
        ),
        tiny,
    )
    env = _env(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True)
    ports = [_free_port(), _free_port()]
    procs = [spawn(["serve", "--port", str(p)], env, logs / f"serve-{p}.log") for p in ports]
    procs += [
        spawn(["worker", "--queue", q, "--pool", "threads"], env, logs / f"{q}.log")
        for q in ("light", "heavy")
    ]
    procs.append(spawn(["beat"], env, logs / "beat.log"))
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url in urls:
            _wait_up(url, procs, logs)
        yield urls, settings
    finally:
        for proc in procs:
            stop(proc)


def _wait_up(url: str, procs: list[Any], logs: Path, within: float = 180.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            tails = {f.name: f.read_text(encoding="utf-8")[-1500:] for f in logs.iterdir()}
            pytest.fail(f"a process of the topology exited: {tails}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not start")


async def _chat(client: httpx.AsyncClient, url: str, key: str, text: str, **extra: Any) -> Any:
    body = {"model": "attune", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    r = await client.post(f"{url}/v1/chat/completions", json={**body, **extra}, headers=_auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _job(client: httpx.AsyncClient, url: str, job_id: str, within: float) -> Any:
    async with asyncio.timeout(within):
        while True:
            job = (await client.get(f"{url}/v1/jobs/{job_id}", headers=ADMIN)).json()
            if job["status"] in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.2)


async def _until(check: Any, within: float) -> None:
    for _ in range(int(within / 0.3)):
        if await check():
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"not within {within} s: {check.__name__}")


async def test_one_journey_across_two_api_processes_workers_and_beat(
    topology: tuple[list[str], Settings], postgres_db: str, chroma_url: str, redis_url: str
) -> None:
    (a, b), settings = topology
    async with httpx.AsyncClient(timeout=120) as client:
        r = await client.post(f"{a}/v1/users", json={"name": "roamer"}, headers=ADMIN)
        assert r.status_code == 201, r.text
        uid, key = r.json()["id"], r.json()["api_key"]
        # A thread whose turns alternate between the two API processes.
        first = await _chat(client, a, key, f"My sister is called {CANARY}.")
        thread = first["attune"]["thread_id"]
        replies = []
        for i, url in enumerate([b, a, b, a, b]):
            reply = await _chat(client, url, key, f"Tell me about walk {i}.", thread_id=thread)
            replies.append(reply["attune"]["turn_id"])
        r = await client.get(f"{b}/v1/users/{uid}/threads/{thread}", headers=_auth(key))
        assert r.status_code == 200, r.text
        assert len(r.json()["turns"]) == 12  # every turn, whichever process took it

        # Facts distilled by the light worker, found from the other process.
        async def distilled() -> bool:
            r = await client.get(
                f"{b}/v1/users/{uid}/memories/search",
                params={"q": "what is my sister called", "kind": "fact"},
                headers=_auth(key),
            )
            return r.status_code == 200 and any(CANARY in h["text"] for h in r.json()["data"])

        await _until(distilled, 120)
        # Feedback that makes pairs (the light worker builds them).
        r = await client.post(
            f"{a}/v1/feedback",
            json={
                "turn_id": first["attune"]["turn_id"],
                "rating": "down",
                "edited_text": f"How nice, {CANARY} is a lovely name.",
            },
            headers=_auth(key),
        )
        assert r.status_code == 201, r.text

        async def paired() -> bool:
            r = await client.get(f"{b}/v1/users/{uid}/preference-pairs", headers=_auth(key))
            return bool(r.json()["data"])

        await _until(paired, 120)
        for turn_id in replies[:4]:  # up-voted replies: SFT examples
            r = await client.post(
                f"{b}/v1/feedback", json={"turn_id": turn_id, "rating": "up"}, headers=_auth(key)
            )
            assert r.status_code == 201, r.text
        # A training job on the heavy worker; its promotion is served by the other process.
        r = await client.post(
            f"{a}/v1/users/{uid}/train", json={"kind": "sft", "max_steps": 2}, headers=_auth(key)
        )
        assert r.status_code == 202, r.text
        job = await _job(client, a, r.json()["id"], 300)
        assert job["status"] == "succeeded", job
        adapters = (await client.get(f"{b}/v1/users/{uid}/adapters", headers=_auth(key))).json()
        assert adapters["serving"]["kind"] == "user", adapters["serving"]
        served = await _chat(client, b, key, "Hello again!")
        assert served["attune"]["target"].startswith("user:"), served["attune"]
        # Beat runs beside them (it only enqueues: it must be alive and quiet).
        beat_log = (settings.data_dir / "logs" / "beat.log").read_text(encoding="utf-8")
        assert "Traceback" not in beat_log
        # A user deletion leaves nothing in any store.
        r = await client.delete(f"{b}/v1/users/{uid}", headers=ADMIN)
        assert r.status_code == 202, r.text
        job = await _job(client, a, r.json()["id"], 300)
        assert job["status"] == "succeeded", job
    left = {
        "tables": canary.postgres_rows_with(postgres_db, CANARY),
        "collections": canary.chroma_items_with(chroma_url, CANARY),
        "redis": canary.redis_keys_with(redis_url, CANARY),
        "files": canary.files_with(settings.data_dir, CANARY),  # the logs included
    }
    assert left == {"tables": [], "collections": [], "redis": [], "files": []}, left
