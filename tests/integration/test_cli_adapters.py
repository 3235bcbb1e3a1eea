"""``attune train`` and ``attune adapters``, run as real processes on a tiny real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session

from adapters.dataset_sources import add_samples
from memory.records import db, repo
from tests.tiny_lm import build_tiny_lm
from wiring.settings import Settings


def attune(args: list[str], data_dir: Path, model_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ATTUNE_DATA_DIR": str(data_dir),
        "ATTUNE_MODEL__BASE_MODEL_DIR": str(model_dir),
        "ATTUNE_TRAINING__DEVICE": "cpu",
        "ATTUNE_TRAINING__MIN_SFT_EXAMPLES": "4",
        "ATTUNE_TRAINING__SFT_MARGIN": "-100",  # any rise: a random model
        "ATTUNE_TRAINING__GENERAL_MAX_RISE": "100",
        "ATTUNE_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_list_rollback_from_the_command_line(tmp_path: Path) -> None:
    model = build_tiny_lm(tmp_path / "tiny")
    data = tmp_path / "data"
    engine = db.open_engine(Settings(data_dir=data).db)
    with Session(engine) as session:
        user, _ = repo.create_user(session, name="cli")
        add_samples(session, user_id=user.id, texts=[f"Arr, line {i}!" for i in range(8)])
        session.commit()
        user_id = user.id
    engine.dispose()

    few = attune(["train", user_id, "--kind", "dpo"], data, model)
    assert few.returncode == 2 and "preference pairs" in few.stderr, few.stderr

    out = attune(["train", user_id, "--kind", "sft", "--max-steps", "2"], data, model)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert result["status"] == "promoted" and result["training"]["steps"] == 2
    assert "100%" in out.stderr  # the progress bar

    listed = attune(["adapters", "list", user_id], data, model)
    assert listed.returncode == 0, listed.stderr
    assert result["adapter"] in listed.stdout and "promoted" in listed.stdout

    back = attune(["adapters", "rollback", user_id], data, model)
    assert back.returncode == 0 and "group adapter or base" in back.stdout, back.stderr
    again = attune(["adapters", "promote", user_id, result["adapter_id"]], data, model)
    assert again.returncode == 0 and "promoted" in again.stdout, again.stderr
