"""Fault: the data directory's disk is full under a running ``attune serve`` (issue 15).

Chats answer 200, or 507 with a message that names the disk (never 500); nothing on disk
is corrupted (SQLite's integrity checks pass, every stored reply has its message); and once
space is freed, chats work again without a restart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.integration.fault_support import fill, small_disk
from tests.integration.test_server import ADMIN, start_server

pytestmark = pytest.mark.model
__all__ = ["small_disk"]  # a fixture used by name


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_full_disk_answers_507_corrupts_nothing_and_recovers(small_disk: Path) -> None:
    data = small_disk
    srv = start_server(data)
    try:
        made = httpx.post(
            srv.url + "/v1/users", json={"name": "d"}, headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        auth = {"Authorization": f"Bearer {made['api_key']}"}

        def chat(n: int, stream: bool = False) -> httpx.Response:
            body = {
                "model": "attune",
                "max_tokens": 2,
                "temperature": 0,
                "stream": stream,
                "messages": [{"role": "user", "content": f"Message number {n}, padded. " * 10}],
            }
            return httpx.post(srv.url + "/v1/chat/completions", json=body, headers=auth, timeout=60)

        assert chat(0).status_code == 200
        filler = fill(data)
        statuses = []
        for n in range(1, 9):
            r = chat(n, stream=n % 2 == 0)
            statuses.append(r.status_code)
            assert r.status_code in (200, 507), (n, r.status_code, r.text[-800:])
            if r.status_code == 507:
                assert "disk is full" in r.json()["error"]["message"]
        assert 507 in statuses, statuses

        filler.unlink()
        r = chat(100)
        assert r.status_code == 200, r.text
    finally:
        srv.stop()
    for db in data.glob("*.db"):
        assert _integrity(db) == "ok", db
    with sqlite3.connect(data / "attune.db") as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM turns a WHERE a.role = 'assistant' AND NOT EXISTS "
            "(SELECT 1 FROM turns u WHERE u.id = a.reply_to_id)"
        ).fetchone()[0]
        empty = conn.execute(
            "SELECT count(*) FROM turns WHERE role = 'assistant' AND completion_tokens IS NULL"
        ).fetchone()[0]
    assert (orphans, empty) == (0, 0)
    assert "Message number" not in srv.log.read_text()  # logs never hold message text
