"""The web app in a real, headless Chromium against a real ``attune serve`` (the real model).

The journeys live in ``tests/web/journeys.mjs`` (Node, ``playwright-core``, ``axe-core``):
sign in, a streamed chat, "call me Captain" with its notice and "why this answer", vote
and edit into a preference pair, a memory found, traced to its turn and deleted, a
temporary chat that writes nothing, a tiny training run watched to the end and rolled
back, accessibility checks on every page, and one user failing to open another's thread.
Screenshots (desktop and 390-px phone width) go to ``tests/web/artifacts``.

Nothing here skips: without Chromium, Node or the npm packages the test fails with the
command that installs them (``make web-deps``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.test_server import ADMIN, start_server

pytestmark = pytest.mark.model

WEB = REPO_ROOT / "tests" / "web"
ARTIFACTS = WEB / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
JOURNEYS_TIMEOUT_S = 420


def _tools() -> str:
    """The ``node`` binary, with Chromium and the npm packages in place; else fail."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make web-deps` (apt-get install -y chromium)")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `apt-get install -y nodejs npm`, then `make web-deps`")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        npm = shutil.which("npm")
        done = (
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True)
            if npm is not None
            else None
        )
        if done is None or done.returncode != 0:
            out = done.stdout.decode() + done.stderr.decode() if done is not None else ""
            pytest.fail(f"`npm ci` in {WEB} failed (run `make web-deps`):\n{out[-2000:]}")
    return node


def test_browser_journeys(tmp_path: Path) -> None:
    node = _tools()
    server = start_server(
        tmp_path / "data",
        extra_env={
            # Short replies keep the journeys quick on two cores; the gate is opened so
            # that a 2-step adapter is promoted and can be rolled back.
            "ATTUNE_MODEL__DEFAULT_MAX_TOKENS": "24",
            "ATTUNE_TRAINING__SFT_MARGIN": "-100",
            "ATTUNE_TRAINING__GENERAL_MAX_RISE": "1000",
            "OMP_WAIT_POLICY": "PASSIVE",
        },
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [node, "journeys.mjs"],
            cwd=WEB,
            env={
                **os.environ,
                "ATTUNE_URL": server.url,
                "ATTUNE_ADMIN_KEY": ADMIN,
                "ARTIFACTS": str(ARTIFACTS),
                "CHROMIUM": str(CHROMIUM),
            },
            capture_output=True,
            text=True,
            timeout=JOURNEYS_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the journeys ran past {JOURNEYS_TIMEOUT_S}s:\n{exc.stdout!s}\n{exc.stderr!s}")
    finally:
        server.stop()
    output = f"{done.stdout}\n{done.stderr}"
    print(f"browser journeys in {time.monotonic() - started:.1f}s\n{output}")
    if done.returncode != 0:
        log = server.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"browser journeys failed:\n{output[-8000:]}\n--- server log ---\n{log}")
