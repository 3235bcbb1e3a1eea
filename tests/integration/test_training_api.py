"""Training through the API with the embedded worker: real jobs on the heavy queue train a
tiny real model (``tests.tiny_lm``), gate it, register and promote it; promotion, rollback,
one job per owner, too little data, group fallback and deletion retire-and-retrain.

Publication is checked on the real local backend over the same tiny model (``served_api``,
built from the settings as ``attune serve`` builds it): promotion by the worker, by hand
and by rollback loads the adapter into the serving engine before any request names it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from adapters.records import AdapterRecord, Sample
from memory.records.jobs import Job
from memory.records.tables import User
from tests.conftest import ADMIN_KEY, Api, open_api
from tests.fakes import ScriptedBackend
from tests.integration import training_support
from tests.integration.training_support import (
    for_tiny_model,
    group_of_two,
    loaded,
    target_of_a_turn,
    train_group,
)
from wiring.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
tiny = training_support.tiny  # the shared fixture, under its own name here


@pytest.fixture
def settings(settings: Settings, tiny: Path) -> Settings:
    for_tiny_model(settings, tiny)
    return settings


@pytest.fixture
async def served_api(settings: Settings) -> AsyncIterator[Api]:
    """The app with the embedded worker and the configured (real, local) backend."""
    settings.worker.embedded = True
    async for a in open_api(settings, None):
        yield a


SAMPLES = [f"Arr matey, sample number {i} be written like a pirate!" for i in range(10)]


async def _upload(api: Api, user: str, key: str, texts: list[str] = SAMPLES) -> None:
    r = await api.client.post(
        f"/v1/users/{user}/samples",
        json={"samples": [{"text": t} for t in texts]},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text


async def _train(api: Api, user: str, key: str, **body: Any) -> dict[str, Any]:
    r = await api.client.post(f"/v1/users/{user}/train", json=body, headers=api.auth(key))
    assert r.status_code == 202, r.text
    assert r.json()["kind"] in ("train_sft", "train_dpo")
    return await api.wait_job(r.json()["id"], within=240)


async def _adapters(api: Api, user: str, key: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/users/{user}/adapters", headers=api.auth(key))
    assert r.status_code == 200, r.text
    listing: dict[str, Any] = r.json()
    return listing


async def test_train_promote_rollback_through_the_api(served_api: Api):
    api = served_api
    user, key = api.new_user("pirate")
    await _upload(api, user, key)
    first = await _train(api, user, key, kind="sft", max_steps=3)
    assert first["status"] == "succeeded", first
    result = first["result"]
    assert result["status"] == "promoted", result
    assert result["training"]["steps"] == 3
    listing = await _adapters(api, user, key)
    [record] = listing["data"]
    assert record["status"] == "promoted" and record["gate_passed"] is True
    assert any("held-out style perplexity" in r for r in record["gate_reasons"])
    assert record["dataset"]["sft_count"] == len(SAMPLES)
    assert record["metrics"]["gate"]["heldout_ppl"] > 0
    assert (
        api.services.settings.model.adapters_dir / record["name"] / "adapter_config.json"
    ).is_file()
    assert loaded(api) == {record["name"]}  # the worker published it on the server's engine
    assert listing["serving"] == {
        "kind": "user",
        "adapter": record["name"],
        "adapter_id": record["id"],
        "reason": "user adapter",
    }

    second = await _train(api, user, key, kind="sft", max_steps=6)
    assert second["result"]["status"] == "promoted", second["result"]
    listing = await _adapters(api, user, key)
    newer, older = listing["data"]
    assert newer["parent_id"] == older["id"]  # lineage
    assert older["status"] == "retired" and older["status_reason"] == "superseded"
    assert loaded(api) == {newer["name"]}  # the superseded one is released
    assert await target_of_a_turn(api, key) == f"user:{newer['name']}"

    r = await api.client.post(f"/v1/users/{user}/adapters/rollback", headers=api.auth(key))
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["data"][1]["status"] == "promoted" and back["data"][0]["status"] == "retired"
    assert back["serving"]["adapter_id"] == older["id"]
    assert loaded(api) == {older["name"]}

    r = await api.client.post(
        f"/v1/users/{user}/adapters/{newer['id']}/promote", headers=api.auth(ADMIN_KEY)
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["status"] == "promoted"
    assert loaded(api) == {newer["name"]}
    # promoting the promoted one again is a conflict, not a server error
    r = await api.client.post(
        f"/v1/users/{user}/adapters/{newer['id']}/promote", headers=api.auth(key)
    )
    assert r.status_code == 409, r.text


async def test_one_job_per_owner_and_too_little_data(api: Api):
    user, key = api.new_user("busy")
    r = await api.client.post(f"/v1/users/{user}/train", json={}, headers=api.auth(key))
    assert r.status_code == 422 and "at least 4 examples" in r.text, r.text
    r = await api.client.post(
        f"/v1/users/{user}/train", json={"kind": "dpo"}, headers=api.auth(key)
    )
    assert r.status_code == 422 and "preference pairs" in r.text, r.text
    await _upload(api, user, key)
    r = await api.client.post(
        f"/v1/users/{user}/train", json={"kind": "auto"}, headers=api.auth(key)
    )
    assert r.status_code == 202 and r.json()["kind"] == "train_sft", r.text
    # no worker runs here, so the first job stays queued
    r2 = await api.client.post(f"/v1/users/{user}/train", json={}, headers=api.auth(key))
    assert r2.status_code == 409 and r.json()["id"] in r2.text, r2.text
    with Session(api.services.engine) as session:
        job = session.get(Job, r.json()["id"])
        assert job is not None and job.queue.endswith("heavy")


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "lora"},
        {"max_steps": 0},
        {"max_steps": "many"},
        {"kind": "sft", "extra": 1},
        [],
    ],
)
async def test_bad_train_requests_answer_422(api: Api, body: Any):
    user, key = api.new_user("bad")
    r = await api.client.post(f"/v1/users/{user}/train", json=body, headers=api.auth(key))
    assert r.status_code == 422, r.text


async def test_keys_reach_only_their_own_user(api: Api):
    alice, alice_key = api.new_user("alice")
    bob, _ = api.new_user("bob")
    for method, path in (
        ("GET", f"/v1/users/{bob}/adapters"),
        ("POST", f"/v1/users/{bob}/adapters/rollback"),
        ("POST", f"/v1/users/{bob}/adapters/ad_x/promote"),
        ("POST", f"/v1/users/{bob}/train"),
    ):
        r = await api.client.request(method, path, json={}, headers=api.auth(alice_key))
        assert r.status_code == 404, (path, r.text)
    r = await api.client.post(
        f"/v1/users/{alice}/adapters/{'x' * 300}/promote", headers=api.auth(alice_key)
    )
    assert r.status_code == 404
    r = await api.client.post(f"/v1/users/{alice}/adapters/rollback", headers=api.auth(alice_key))
    assert r.status_code == 409
    assert (await _adapters(api, bob, ADMIN_KEY))["serving"]["kind"] == "base"


async def test_group_adapter_serves_users_without_their_own(served_api: Api):
    api = served_api
    group_id, (rich, rich_key), (poor, poor_key) = group_of_two(api)
    await _upload(api, rich, rich_key)
    done = await train_group(api, group_id)
    assert done["result"]["status"] == "promoted", done
    name = done["result"]["adapter"]
    assert loaded(api) == {name}  # published by the worker, before any request
    listing = await _adapters(api, poor, poor_key)
    assert listing["serving"]["kind"] == "group" and listing["serving"]["adapter"] == name
    assert listing["group"][0]["owner_kind"] == "group"
    assert await target_of_a_turn(api, poor_key) == f"group:{name}"

    # deleting the rich user (whose samples trained it) retires the group adapter at once
    r = await api.client.delete(f"/v1/users/{rich}", headers=api.auth(ADMIN_KEY))
    assert r.status_code == 202, r.text
    deleted = await api.wait_job(r.json()["id"], within=120)
    assert deleted["result"]["adapters_marked"] == 1, deleted
    listing = await _adapters(api, poor, poor_key)
    assert listing["serving"]["kind"] == "base"
    assert listing["group"][0]["status"] == "retired"
    assert loaded(api) == set()  # the deletion released it from the serving engine
    with Session(api.services.engine) as session:
        assert session.exec(select(Sample).where(Sample.user_id == rich)).first() is None


async def test_deleting_a_turn_retires_and_retrains(worker_api: Api, backend: ScriptedBackend):
    api = worker_api
    user, key = api.new_user("chatty")
    backend.script = "Arr, that be a fine question matey."
    turn_ids = []
    for i in range(6):
        r = await api.client.post(
            "/v1/chat/completions",
            json={"model": "attune", "messages": [{"role": "user", "content": f"question {i}?"}]},
            headers=api.auth(key),
        )
        assert r.status_code == 200, r.text
        turn_id = r.json()["attune"]["turn_id"]
        turn_ids.append(turn_id)
        r = await api.client.post(
            "/v1/feedback", json={"turn_id": turn_id, "rating": "up"}, headers=api.auth(key)
        )
        assert r.status_code in (200, 201, 202), r.text
    await api.drain_jobs()
    first = await _train(api, user, key, kind="sft", max_steps=2)
    assert first["result"]["status"] == "promoted", first
    adapter_id = first["result"]["adapter_id"]

    r = await api.client.delete(f"/v1/users/{user}/turns/{turn_ids[0]}", headers=api.auth(key))
    assert r.status_code == 202, r.text
    done = await api.wait_job(r.json()["id"], within=120)
    assert done["result"]["adapters_marked"] == 1, done
    [retrain_id] = done["result"]["retrain_jobs"]
    with Session(api.services.engine) as session:
        retired = session.get(AdapterRecord, adapter_id)
        assert retired is not None and retired.status == "retired"
        assert retired.status_reason == "training data deleted"
        owner = session.get(User, user)
        assert owner is not None and owner.adapter_name is None  # routed to the next target now
    retrain = await api.wait_job(retrain_id, within=240)
    assert retrain["status"] == "succeeded", retrain
    listing = await _adapters(api, user, key)
    newest = listing["data"][0]
    assert newest["id"] != adapter_id
    assert newest["dataset"]["sft_count"] == 5  # the deleted turn's reply is gone
