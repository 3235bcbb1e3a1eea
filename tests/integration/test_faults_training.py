"""Fault: a heavy worker SIGKILLed mid-training (issue 15).

The job's message comes back (``acks_late``; the visibility timeout), the next worker
takes the job over once the dead one's heartbeat is stale, and training resumes from the
newest checkpoint the killed run saved, rather than from step 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
from functools import partial
from pathlib import Path

import pytest

from memory.records import jobs
from tests.conftest import ADMIN_KEY, open_api
from tests.fakes import ScriptedBackend
from tests.integration import training_support
from tests.integration.fault_support import ThrowawayRedis, throwaway_redis, wait_for
from tests.integration.test_workers import _env, _spawn, _stop, _worker_settings
from wiring.settings import Settings
from workers.training import submit_training

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
tiny = training_support.tiny  # the shared fixture, under its own name here
__all__ = ["throwaway_redis"]  # a fixture used by name

SAMPLES = [f"Arr matey, sample number {i} be written like a pirate!" for i in range(10)]


def _saved(checkpoints: Path, n: int) -> bool:
    """Whether the run saved ``n`` checkpoints."""
    return len(list(checkpoints.glob("checkpoint-*"))) >= n


def _heavy_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = _env(settings)
    env.update(
        ATTUNE_MODEL__BASE_MODEL_DIR=str(settings.model.base_model_dir),
        ATTUNE_TRAINING__DEVICE="cpu",
        ATTUNE_TRAINING__MIN_SFT_EXAMPLES="4",
        ATTUNE_TRAINING__SFT_MARGIN="-100",
        ATTUNE_TRAINING__GENERAL_MAX_RISE="100",
    )
    return _spawn(["worker", "--queue", "heavy", "--pool", "solo"], env, log)


async def test_a_training_job_whose_worker_was_killed_resumes_from_its_checkpoint(
    tmp_path: Path, tiny: Path, throwaway_redis: ThrowawayRedis
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        worker=_worker_settings(
            broker_url=throwaway_redis.url,
            visibility_timeout_s=3,
            heartbeat_s=0.5,
            stale_after_s=2,
        ),
    )
    training_support.for_tiny_model(settings, tiny)
    log = tmp_path / "worker.log"
    async for api in open_api(settings, ScriptedBackend()):
        uid, key = api.new_user("pirate")
        r = await api.client.post(
            f"/v1/users/{uid}/samples",
            json={"samples": [{"text": t} for t in SAMPLES]},
            headers=api.auth(key),
        )
        assert r.status_code == 201, r.text
        # 60 steps of a tiny model, a checkpoint every 10 (the small-model default).
        job = submit_training(
            api.services.jobs, settings.training, owner_kind="user", owner_id=uid,
            kind="sft", max_steps=60, reason="fault test",
        )  # fmt: skip
        assert settings.training.work_dir is not None
        checkpoints = settings.training.work_dir / job.id / "checkpoints"
        first = _heavy_worker(settings, log)
        try:
            wait_for(partial(_saved, checkpoints, 2), 120, "two checkpoints")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        cut = jobs.get(api.services.engine, job.id)
        assert cut is not None and cut.status == "running"

        second = _heavy_worker(settings, log)
        try:
            done = await api.wait_job(job.id, within=180)
        finally:
            _stop(second)
        assert done["status"] == "succeeded", (done, log.read_text()[-3000:])
        training = done["result"]["training"]
        # From a checkpoint the killed run finished writing (the newest one may be cut short
        # by the kill, and is then skipped), never from step 0.
        assert training["resumed_from_step"] is not None and training["resumed_from_step"] >= 10
        assert training["steps"] == 60
