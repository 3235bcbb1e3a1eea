"""Publication across processes, on the real local backend over a tiny real model.

The process that promotes an adapter (a standalone worker, or ``attune train``, which runs
the same ``adapters.jobs.run_training`` with the composition root's core as publisher) is
not the server that serves it. It publishes on its own backend, which checks that the
adapter loads over the base model; the server's local engine shares the adapters
directory (``settings.model.adapters_dir``) and finds ``<adapters_dir>/<name>`` by name at
the first request that routes to it. Nothing needs to reach the server's memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Api, open_api
from tests.integration import training_support
from tests.integration.test_cli_adapters import attune
from tests.integration.training_support import for_tiny_model, loaded, target_of_a_turn
from wiring.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
tiny = training_support.tiny


@pytest.fixture
async def server(settings: Settings, tiny: Path) -> AsyncIterator[Api]:
    """``attune serve`` on the tiny model, without a worker: training happens elsewhere."""
    for_tiny_model(settings, tiny)
    async for a in open_api(settings, None):
        yield a


async def _serving(api: Api, user: str, key: str) -> dict[str, object]:
    r = await api.client.get(f"/v1/users/{user}/adapters", headers=api.auth(key))
    assert r.status_code == 200, r.text
    serving: dict[str, object] = r.json()["serving"]
    return serving


async def test_an_adapter_promoted_in_another_process_serves_at_the_next_request(
    server: Api, tiny: Path
):
    api = server
    data_dir = api.services.settings.data_dir
    user, key = api.new_user("elsewhere")
    r = await api.client.post(
        f"/v1/users/{user}/samples",
        json={"samples": [{"text": f"Arr, line {i} of the log!"} for i in range(8)]},
        headers=api.auth(key),
    )
    assert r.status_code == 201, r.text

    out = attune(["train", user, "--kind", "sft", "--max-steps", "2"], data_dir, tiny)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["status"] == "promoted", result
    name = result["adapter"]

    # The server never heard of it, yet routes to it: its engine finds it on disk by name.
    assert loaded(api) == set()
    assert (await _serving(api, user, key))["adapter"] == name
    assert await target_of_a_turn(api, key) == f"user:{name}"
    assert loaded(api) == {name}  # loaded by that request

    back = attune(["adapters", "rollback", user], data_dir, tiny)
    assert back.returncode == 0, back.stderr
    assert (await _serving(api, user, key))["kind"] == "base"
