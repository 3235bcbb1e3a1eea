"""Thread state in the real LangGraph checkpointers (SQLite file, PostgreSQL) across restarts.

The model here is scripted: what is under test is the record store and the checkpointer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, open_api
from tests.fakes import ScriptedBackend
from wiring.settings import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def durable_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    extra: dict[str, Any] = {}
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_db")
        extra["db"] = {"url": url.replace("postgresql://", "postgresql+psycopg://")}
    return Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, **extra)


async def test_thread_survives_a_restart(durable_settings: Settings) -> None:
    if durable_settings.database_url.startswith("postgresql"):
        assert str(durable_settings.graph.checkpoint_url).startswith("postgresql://")
    backend = ScriptedBackend()
    async for api in open_api(durable_settings, backend):
        _, key = api.new_user()
        r = await api.client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "remember the number 42"}]},
            headers=Api.auth(key),
        )
        thread = r.json()["attune"]["thread_id"]
    async for api in open_api(durable_settings, backend):
        r = await api.client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "which number?"}], "thread_id": thread},
            headers=Api.auth(key),
        )
        assert r.status_code == 200, r.text
        history = await api.services.runner.thread_messages(thread)
    seen = [m.text for m in backend.calls[-1][1:]]
    assert seen == ["remember the number 42", "echo: remember the number 42", "which number?"]
    assert [m.text for m in history][-1] == "echo: which number?"
