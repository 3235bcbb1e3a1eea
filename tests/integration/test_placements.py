"""The shared placement table: written by any process's vllm backend, read by admins.

A real database (SQLite migrated as the server migrates it); the vllm backend's own
writes through it are tested against a real vLLM server in ``test_vllm.py``.
"""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from adapters.placements import DbPlacementLog, list_placements
from api.cli import app as cli_app
from tests.conftest import ADMIN_KEY, Api
from wiring.settings import Settings


async def test_admins_see_the_table_users_do_not_and_unpublished_adapters_leave_it(
    api: Api,
) -> None:
    log = DbPlacementLog(api.services.engine)
    log.placed("usr_a-sft-v1", "http://vllm-1:8000", "loaded", "/adapters/usr_a-sft-v1")
    log.placed("usr_a-sft-v1", "http://vllm-2:8000", "loaded", "/adapters/usr_a-sft-v1")
    log.placed("usr_a-sft-v1", "http://vllm-2:8000", "evicted", "/adapters/usr_a-sft-v1")
    log.placed("grp-b-v1", "http://vllm-1:8000", "loaded", "/adapters/grp-b-v1")

    r = await api.client.get("/v1/admin/placements", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["placements"]
    assert [(p["adapter"], p["replica"], p["state"]) for p in rows] == [
        ("grp-b-v1", "http://vllm-1:8000", "loaded"),
        ("usr_a-sft-v1", "http://vllm-1:8000", "loaded"),
        ("usr_a-sft-v1", "http://vllm-2:8000", "evicted"),  # one row per pair, updated
    ]
    one = await api.client.get(
        "/v1/admin/placements", params={"adapter": "grp-b-v1"}, headers=api.auth(ADMIN_KEY)
    )
    assert [p["adapter"] for p in one.json()["placements"]] == ["grp-b-v1"]

    _, key = api.new_user("mallory")
    r = await api.client.get("/v1/admin/placements", headers=api.auth(key))
    assert r.status_code == 403, r.text
    r = await api.client.get(
        "/v1/admin/placements", params={"adapter": ""}, headers=api.auth(ADMIN_KEY)
    )
    assert 400 <= r.status_code < 500 and "adapter" in r.text

    log.forgotten("usr_a-sft-v1")
    assert [p.adapter for p in list_placements(api.services.engine)] == ["grp-b-v1"]


def test_the_cli_lists_the_table(settings: Settings, monkeypatch: Any) -> None:
    from memory.records import db

    monkeypatch.setenv("ATTUNE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    empty = runner.invoke(cli_app, ["adapters", "placements"])
    assert empty.exit_code == 0, empty.output
    assert "no placements recorded" in empty.output
    engine = db.open_engine(Settings(data_dir=settings.data_dir).db)
    DbPlacementLog(engine).placed("grp-b-v1", "http://vllm-1:8000", "loaded", "/a/grp-b-v1")
    listed = runner.invoke(cli_app, ["adapters", "placements"])
    assert listed.exit_code == 0, listed.output
    assert "grp-b-v1" in listed.output and "http://vllm-1:8000" in listed.output
