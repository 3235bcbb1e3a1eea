"""The data directory and what is in it are private to the account running Attune."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from wiring.permissions import secure_data_dir
from wiring.services import build_core
from wiring.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_start_up_makes_the_data_dir_and_its_databases_private(settings: Settings) -> None:
    old = os.umask(0o022)  # the usual umask: what made them world-readable
    try:
        core = build_core(settings)
        core.close()
    finally:
        os.umask(old)
    data = settings.data_dir
    assert _mode(data) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files), files
    assert all(_mode(p) & 0o077 == 0 for p in files), {str(p): oct(_mode(p)) for p in files}


def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "vectors").mkdir(parents=True)
    (data / "vectors" / "index.bin").write_text("x")
    (data / "vectors" / "index.bin").chmod(0o644)
    (data / "vectors").chmod(0o755)
    secure_data_dir(data)
    assert _mode(data / "vectors") == 0o700 and _mode(data / "vectors" / "index.bin") == 0o600


def test_the_attune_command_creates_everything_private(tmp_path: Path) -> None:
    env = {**os.environ, "ATTUNE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "api", "users", "create", "pat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    made = [tmp_path / "data", *(tmp_path / "data").rglob("*")]
    loose = {str(p): oct(_mode(p)) for p in made if _mode(p) & 0o077}
    assert not loose  # WAL and journal files too, made after start-up
