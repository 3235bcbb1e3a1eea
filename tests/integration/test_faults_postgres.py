"""Fault: PostgreSQL restarted under a running ``attune serve`` (issue 15).

While the database is down, chats (plain and streamed) answer 503 with ``Retry-After`` and
a message that names the database, never 500; once it is back, chats work again without
restarting the server, on new threads and on a thread that existed before the outage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.fault_support import ThrowawayPostgres, throwaway_postgres, wait_for
from tests.integration.test_server import ADMIN, start_server

pytestmark = pytest.mark.model
__all__ = ["throwaway_postgres"]  # a fixture used by name


def _chat(url: str, key: str, *, stream: bool = False, thread: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {
        "model": "attune",
        "max_tokens": 2,
        "temperature": 0,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello there."}],
    }
    if thread is not None:
        body["thread_id"] = thread
    r = httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    return r


@pytest.mark.parametrize("thread_state", ["sqlite", "postgres"])
def test_chats_answer_503_while_postgres_is_down_and_recover_after(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres, thread_state: str
) -> None:
    pg = throwaway_postgres
    env = {"ATTUNE_DB__URL": pg.url}
    if thread_state == "sqlite":  # the records alone on PostgreSQL
        env["ATTUNE_GRAPH__CHECKPOINT_URL"] = str(tmp_path / "threads.db")
    srv = start_server(tmp_path / "data", extra_env=env)
    try:
        made = httpx.post(
            srv.url + "/v1/users", json={"name": "p"}, headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        key = made["api_key"]
        first = _chat(srv.url, key)
        assert first.status_code == 200, first.text
        thread = first.json()["attune"]["thread_id"]

        pg.stop()
        for stream in (False, True):
            down = _chat(srv.url, key, stream=stream)
            assert down.status_code == 503, (stream, down.status_code, down.text[:500])
            assert int(down.headers["Retry-After"]) >= 1
            error = down.json()["error"]
            assert error["type"] == "service_unavailable"
            assert "database" in error["message"]
        assert httpx.get(srv.url + "/healthz").status_code == 200

        pg.start()
        # Back without a restart: the pool's pre-ping replaces the dead connections.
        back = wait_for(
            lambda: (r := _chat(srv.url, key)).status_code == 200 and r, 10, "a chat after"
        )
        assert back.json()["attune"]["thread_id"] != thread
        same = _chat(srv.url, key, thread=thread)
        assert same.status_code == 200, same.text
        streamed = _chat(srv.url, key, stream=True, thread=thread)
        assert streamed.status_code == 200 and '"attune"' in streamed.text, streamed.text[-500:]
    finally:
        srv.stop()
    log = srv.log.read_text()
    assert "Hello there" not in log  # logs never hold message text
