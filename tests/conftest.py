"""Shared fixtures: settings on a temporary data dir, apps with the scripted or real model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from memory.records import repo
from memory.retrieval.embeddings import MiniLMEmbedder
from tests.fakes import ScriptedBackend
from wiring.settings import Settings

# The real vLLM server, started once per session for the tests that ask for it.
pytest_plugins = ["tests.vllm_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = REPO_ROOT / ".attune" / "models"
ADMIN_KEY = "att_test_admin_key"


@pytest.fixture(autouse=True)
def _eval_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Eval runs a test stores go to its own directory, never the checkout's."""
    monkeypatch.setenv("ATTUNE_EVAL_RUNS_DIR", str(tmp_path / "eval-runs"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        model={"cache_dir": MODEL_CACHE},
        # Jobs queue on the embedded broker; only `worker_api` also runs the worker.
        worker={"embedded": False, "poll_interval_s": 0.05},
    )


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


class Api:
    """An HTTP client on an app, with helpers for keys."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def services(self):
        return self.app.state.services

    def new_user(self, name: str = "alice") -> tuple[str, str]:
        with self.services.store.session() as session:
            user, key = repo.create_user(session, name=name)
            session.commit()
        return user.id, key

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def wait_job(self, job_id: str, within: float = 60.0) -> dict[str, Any]:
        """Poll ``GET /v1/jobs/{id}`` as the admin until the job is finished."""
        async with asyncio.timeout(within):
            while True:
                r = await self.client.get(f"/v1/jobs/{job_id}", headers=self.auth(ADMIN_KEY))
                assert r.status_code == 200, r.text
                job: dict[str, Any] = r.json()
                if job["status"] in ("succeeded", "failed"):
                    return job
                await asyncio.sleep(0.05)

    async def drain_jobs(self, within: float = 60.0) -> None:
        """Wait until no job is queued or running (needs the embedded worker)."""
        from memory.records import jobs

        engine = self.services.engine
        async with asyncio.timeout(within):
            while True:
                busy = [
                    *jobs.list_jobs(engine, status="queued"),
                    *jobs.list_jobs(engine, status="running"),
                ]
                if not busy:
                    return
                await asyncio.sleep(0.05)


_EMBEDDER: MiniLMEmbedder | None = None


def shared_embedder() -> MiniLMEmbedder:
    """One real MiniLM for the whole test session (it loads on first use)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = MiniLMEmbedder(device="cpu", batch_size=64)
    return _EMBEDDER


async def open_api(settings: Settings, backend: object | None) -> AsyncIterator[Api]:
    app = create_app(settings, backend=backend, embedder=shared_embedder())  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://attune.test") as client:
            yield Api(app, client)


@pytest.fixture
async def api(settings: Settings, backend: ScriptedBackend) -> AsyncIterator[Api]:
    async for a in open_api(settings, backend):
        yield a


@pytest.fixture
async def worker_api(settings: Settings, backend: ScriptedBackend) -> AsyncIterator[Api]:
    """``api`` with the embedded Celery worker running in-process, as ``attune serve``."""
    settings.worker.embedded = True
    async for a in open_api(settings, backend):
        yield a
