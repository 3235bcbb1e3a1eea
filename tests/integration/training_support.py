"""What the training API tests share: a tiny real model, settings suited to it, a user
group to train a group adapter for, and a look at what the serving engine has loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from adapters.backend import LocalBackend
from memory.records.tables import User, UserGroup
from tests.conftest import Api
from tests.tiny_lm import build_tiny_lm
from wiring.settings import Settings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM saved as a model directory (seconds to train)."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "model")


def for_tiny_model(settings: Settings, tiny: Path) -> Settings:
    """``settings`` training ``tiny`` on the CPU, with small data minimums and open gates."""
    settings.model.base_model_dir = tiny
    settings.training.device = "cpu"
    settings.training.min_sft_examples = 4
    settings.training.min_dpo_pairs = 4
    # A random tiny model: the gate's margins are the real model's business (evals/).
    # Two steps on random-token replies may raise held-out perplexity, so the gate
    # tolerates any rise here; the gate's decisions have their own unit tests.
    settings.training.sft_margin = -100.0
    settings.training.general_max_rise = 100.0
    return settings


def group_of_two(api: Api) -> tuple[str, tuple[str, str], tuple[str, str]]:
    """A user group ``auto-1`` holding two new users, ``rich`` and ``poor``.

    Returns:
        ``(group_id, (rich, rich_key), (poor, poor_key))``.
    """
    with api.services.store.session() as session:
        group = UserGroup(name="auto-1")
        session.add(group)
        session.commit()
        group_id: str = group.id
    rich = api.new_user("rich")
    poor = api.new_user("poor")
    with Session(api.services.engine) as session:
        for uid, _ in (rich, poor):
            u = session.get(User, uid)
            assert u is not None
            u.group_id = group_id
            session.add(u)
        session.commit()
    return group_id, rich, poor


async def train_group(api: Api, group_id: str) -> dict[str, Any]:
    """Submit a two-step SFT job for the group's adapter and wait for it (the job's view)."""
    from workers.training import submit_training

    job = submit_training(
        api.services.jobs,
        api.services.settings.training,
        owner_kind="group",
        owner_id=group_id,
        kind="sft",
        max_steps=2,
    )
    return await api.wait_job(job.id, within=240)


def loaded(api: Api) -> set[str]:
    """The adapters the serving engine holds in memory (published, or loaded by a request)."""
    backend = api.services.backend
    assert isinstance(backend, LocalBackend)
    return backend.engine.adapters.loaded()


async def target_of_a_turn(api: Api, key: str) -> str:
    """Chat one short turn as ``key``'s user; the model target that served it."""
    r = await api.client.post(
        "/v1/chat/completions",
        json={"model": "attune", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    target: str = r.json()["attune"]["target"]
    return target
