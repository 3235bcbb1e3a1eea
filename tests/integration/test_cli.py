"""The ``attune`` command line, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE


def attune(
    args: list[str], data_dir: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ATTUNE_DATA_DIR": str(data_dir),
        "ATTUNE_MODEL__CACHE_DIR": str(MODEL_CACHE),
        "ATTUNE_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["chat"], ["users", "create"], ["model", "prepare"]]
)
def test_help_explains_each_command(command: list[str], tmp_path: Path) -> None:
    out = attune([*command, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout and len(out.stdout.splitlines()) > 5


def test_users_create_prints_a_working_key(tmp_path: Path) -> None:
    out = attune(["users", "create", "grace"], tmp_path)
    assert out.returncode == 0, out.stderr
    key = out.stdout.split("api key:")[1].strip()
    assert key.startswith("att_")
    listed = attune(["users", "list"], tmp_path)
    assert "grace" in listed.stdout


def test_bootstrap_creates_one_first_user_and_prints_examples(tmp_path: Path) -> None:
    first = attune(["users", "bootstrap"], tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "first_user.key").read_text().strip()
    assert key in first.stdout and "curl" in first.stdout and "OpenAI(" in first.stdout
    again = attune(["users", "bootstrap"], tmp_path)
    assert key in again.stdout
    assert attune(["users", "list"], tmp_path).stdout.count("\n") == 1


@pytest.mark.model
def test_local_chat_streams_a_reply_and_records_it(tmp_path: Path) -> None:
    attune(["users", "create", "ada"], tmp_path)
    out = attune(
        ["chat", "--local", "--max-tokens", "8", "--show-meta"],
        tmp_path,
        stdin="Hello there\n/quit\n",
    )
    assert out.returncode == 0, out.stderr
    assert "attune> " in out.stdout and "turn_" in out.stderr
