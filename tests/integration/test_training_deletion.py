"""Deletion reaches training data and adapter weights: through the API with the embedded
worker, real training jobs on a tiny real model (``tests.tiny_lm``), then DELETE of a turn
or a user; afterwards no file under the datasets or adapters directory holds the deleted
text or belongs to the deleted user, and the rows are gone or retired."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from adapters.backend import LocalBackend
from adapters.engine import LocalEngine
from adapters.errors import AdapterNotFoundError
from adapters.records import AdapterRecord, DatasetSnapshot, Sample
from memory.records.tables import Turn, User
from tests.conftest import ADMIN_KEY, Api, open_api
from tests.fakes import ScriptedBackend
from tests.integration import training_support
from tests.integration.training_support import for_tiny_model, group_of_two, train_group
from wiring.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
tiny = training_support.tiny  # the shared fixture, under its own name here

SECRET = "Do you like marmalade quokkas?"
KRAKEN = [f"The kraken sings shanty verse {i} to my parrot." for i in range(8)]


@pytest.fixture
def settings(settings: Settings, tiny: Path) -> Settings:
    for_tiny_model(settings, tiny)
    settings.worker.embedded = True
    return settings


@pytest.fixture
async def local_api(settings: Settings) -> AsyncIterator[Api]:
    """The embedded worker and the real local backend (transformers + peft) on the tiny model."""
    backend = LocalBackend.from_settings(settings.model)
    async for a in open_api(settings, backend):
        yield a


def _dirs(api: Api) -> tuple[Path, Path]:
    s = api.services.settings
    return Path(s.training.datasets_url), s.model.adapters_dir


def _files_with(root: Path, needle: str) -> list[Path]:
    """Files under ``root`` whose bytes or path contain ``needle``."""
    data = needle.encode("utf-8")
    return [
        p
        for p in root.rglob("*")
        if needle in str(p.relative_to(root)) or (p.is_file() and data in p.read_bytes())
    ]


async def _chat(api: Api, key: str, text: str) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/chat/completions",
        json={
            "model": "attune",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": text}],
        },
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _train(api: Api, user: str, key: str) -> dict[str, Any]:
    r = await api.client.post(
        f"/v1/users/{user}/train", json={"kind": "sft", "max_steps": 2}, headers=api.auth(key)
    )
    assert r.status_code == 202, r.text
    done = await api.wait_job(r.json()["id"], within=240)
    assert done["status"] == "succeeded" and done["result"]["status"] == "promoted", done
    return done


async def _delete(api: Api, path: str, key: str) -> dict[str, Any]:
    r = await api.client.delete(path, headers=api.auth(key))
    assert r.status_code == 202, r.text
    done = await api.wait_job(r.json()["id"], within=120)
    assert done["status"] == "succeeded", done
    result: dict[str, Any] = done["result"]
    return result


async def test_deleting_a_turn_deletes_its_snapshots_and_the_weights_trained_on_it(
    local_api: Api,
):
    api = local_api
    engine = api.services.backend.engine
    datasets, adapters = _dirs(api)
    user, key = api.new_user("chatty")
    replies = []
    for text in (SECRET, *(f"question {i}?" for i in range(5))):
        reply = await _chat(api, key, text)
        replies.append(reply["attune"]["turn_id"])
        r = await api.client.post(
            "/v1/feedback",
            json={"turn_id": replies[-1], "rating": "up"},
            headers=api.auth(key),
        )
        assert r.status_code in (200, 201, 202), r.text
    await api.drain_jobs()
    first = (await _train(api, user, key))["result"]
    name, adapter_id = first["adapter"], first["adapter_id"]
    assert _files_with(datasets, SECRET), "the snapshot holds the question as a prompt"
    assert (adapters / name / "adapter_config.json").is_file()
    served = await _chat(api, key, "hello again")  # the engine loads the adapter to serve it
    assert served["attune"]["target"] == f"user:{name}"
    with Session(api.services.engine) as session:
        reply_turn = session.get(Turn, replies[0])
        assert reply_turn is not None and reply_turn.reply_to_id is not None
        question_id = reply_turn.reply_to_id
        [old_snapshot] = session.exec(select(DatasetSnapshot)).all()
        old_snapshot_id = old_snapshot.id

    # Deleting the question (the user's own turn) reaches the snapshot through its reply.
    result = await _delete(api, f"/v1/users/{user}/turns/{question_id}", key)
    assert result["adapters_marked"] == 1, result
    [retrain_id] = result["retrain_jobs"]
    assert _files_with(datasets, SECRET) == []
    assert not (adapters / name).exists()
    assert engine.unload_adapter(name) is False  # the cascade unloaded it already
    assert name not in engine.adapter_names()
    with Session(api.services.engine) as session:
        assert session.get(DatasetSnapshot, old_snapshot_id) is None
        retired = session.get(AdapterRecord, adapter_id)
        assert retired is not None and retired.status == "retired"
        assert retired.status_reason == "training data deleted"
        assert retired.dataset_snapshot_id is None
        assert retired.metrics["deleted"]["dataset_snapshot_id"] == old_snapshot_id
        assert retired.metrics["deleted"]["weights_deleted_at"]
        assert "gate" in retired.metrics and "training" in retired.metrics  # kept
        owner = session.get(User, user)
        assert owner is not None and owner.adapter_name is None
    assert (await _chat(api, key, "still there?"))["attune"]["target"] == "base"

    retrain = await api.wait_job(retrain_id, within=240)
    assert retrain["status"] == "succeeded", retrain
    assert retrain["result"]["status"] == "promoted", retrain
    with Session(api.services.engine) as session:
        [fresh] = session.exec(select(DatasetSnapshot)).all()
        assert fresh.id != old_snapshot_id and fresh.sft_count == 5
        assert question_id not in fresh.source_turn_ids
        assert replies[0] not in fresh.source_turn_ids
    assert _files_with(datasets, SECRET) == [] and _files_with(adapters, SECRET) == []
    assert (adapters / retrain["result"]["adapter"] / "adapter_config.json").is_file()
    r = await api.client.get(f"/v1/users/{user}/adapters", headers=api.auth(key))
    listing = r.json()["data"]
    assert [a["status"] for a in listing] == ["promoted", "retired"]
    assert listing[0]["parent_id"] is None  # the retired one was no longer serving
    # a retired adapter without weights cannot be promoted back
    r = await api.client.post(
        f"/v1/users/{user}/adapters/{adapter_id}/promote", headers=api.auth(key)
    )
    assert r.status_code == 409, r.text


async def test_deleting_a_user_deletes_their_snapshots_adapters_and_pooled_group_data(
    worker_api: Api, backend: ScriptedBackend
):
    api = worker_api
    datasets, adapters = _dirs(api)
    group_id, (rich, rich_key), (poor, poor_key) = group_of_two(api)
    r = await api.client.post(
        f"/v1/users/{rich}/samples",
        json={"samples": [{"text": t} for t in KRAKEN]},
        headers=api.auth(rich_key),
    )
    assert r.status_code == 201, r.text
    own = (await _train(api, rich, rich_key))["result"]
    grouped = (await train_group(api, group_id))["result"]
    assert grouped["status"] == "promoted", grouped
    # A run that died between publishing and registering left a directory behind.
    (adapters / f"{rich}-sft-v9").mkdir()
    (adapters / f"{rich}-sft-v9" / "adapter_config.json").write_text("{}")
    assert _files_with(datasets, KRAKEN[0]) and _files_with(datasets, rich)
    assert (adapters / own["adapter"]).is_dir() and (adapters / grouped["adapter"]).is_dir()

    result = await _delete(api, f"/v1/users/{rich}", ADMIN_KEY)
    assert result["adapters_marked"] == 2, result  # their own adapter and the group's
    assert result["retrain_jobs"] == []  # the group is left with too little data
    for root in (datasets, adapters):
        assert _files_with(root, rich) == [], root
        assert _files_with(root, "kraken") == [], root
    assert not (adapters / grouped["adapter"]).exists()
    with Session(api.services.engine) as session:
        assert session.exec(select(DatasetSnapshot)).all() == []
        assert session.exec(select(Sample)).all() == []
        [group_adapter] = session.exec(select(AdapterRecord)).all()
        assert group_adapter.owner_id == group_id and group_adapter.status == "retired"
        assert group_adapter.status_reason == "training data deleted"
        assert group_adapter.metrics["deleted"]["weights_deleted_at"]
    r = await api.client.get(f"/v1/users/{poor}/adapters", headers=api.auth(poor_key))
    assert r.json()["serving"]["kind"] == "base"


def test_engine_stops_serving_an_adapter_whose_files_are_gone(tiny: Path, tmp_path: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = tmp_path / "adapters"
    for name in ("first", "second"):
        peft_model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(tiny),
            LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
        )
        peft_model.save_pretrained(str(adapters / name))
    engine = LocalEngine.load(tiny, adapters_dir=adapters, device="cpu", max_concurrency=1)
    hi = [{"role": "user", "content": "hi"}]
    for name in ("first", "second"):
        engine.generate(hi, adapter=name, max_new_tokens=2, temperature=0)

    # explicit unload (what deletion does in the serving process); files still there
    assert engine.unload_adapter("first") is True
    assert engine.unload_adapter("first") is False
    assert engine.has_adapter("first")  # it may load again from disk
    # files deleted by another process: refused and unloaded at the next request
    shutil.rmtree(adapters / "second")
    assert not engine.has_adapter("second")
    with pytest.raises(AdapterNotFoundError):
        engine.generate(hi, adapter="second", max_new_tokens=2)
    assert engine.unload_adapter("second") is False
    assert engine.adapter_names() == {"first"}
    base = engine.generate(hi, max_new_tokens=2, temperature=0)
    again = engine.generate(hi, adapter="first", max_new_tokens=2, temperature=0)
    assert base.finish_reason and again.finish_reason
