"""Throwaway servers for fault tests: a PostgreSQL cluster and a Redis on their own ports.

Each can be stopped and started again on the same port and data, so a test restarts
"the database" or "the broker" without touching the machine's shared servers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.integration.test_workers import _free_port


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        pytest.skip("PostgreSQL's server binaries are not installed")
    return str(found[-1])


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own in a temporary directory, run as ``postgres``."""

    def __init__(self) -> None:
        """Create the cluster (not started)."""
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="attune-pg-"))
        self.data = self.root / "data"
        owner = pwd.getpwnam("postgres")
        os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._as_postgres([_pg_bin("initdb"), "-A", "trust", "-U", "postgres", str(self.data)])

    @staticmethod
    def _as_postgres(argv: list[str]) -> None:
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def answers(self) -> bool:
        """Whether a connection succeeds now."""
        try:
            with psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        """Start the server and wait until it answers."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._as_postgres(
            [_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
             "-w", "start"]
        )  # fmt: skip
        wait_for(self.answers, 30, "the throwaway PostgreSQL")

    def stop(self) -> None:
        """Stop it at once (``immediate``: open connections are cut, as in a crash)."""
        self._as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])

    def remove(self) -> None:
        """Stop it if running and delete its files."""
        subprocess.run(
            ["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.data),
             "-m", "immediate", "stop"],
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A running throwaway PostgreSQL; removed after the test."""
    if not shutil.which("runuser") or not _has_postgres_user():
        pytest.skip("no 'postgres' system user to run a throwaway cluster as")
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


class ThrowawayRedis:
    """A ``redis-server`` on its own port that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        """Prepare it in ``workdir`` (not started)."""
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        """Whether it answers a ping now."""
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start it empty and wait until it answers."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 20, "the throwaway redis-server")

    def kill(self) -> None:
        """SIGKILL it: every message it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A running throwaway Redis; killed after the test."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = ThrowawayRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class ThrowawayChroma:
    """A ``chroma run`` server on its own port and directory, stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        """Prepare it in ``workdir`` (not started)."""
        from tests.integration.test_workers import CHROMA

        self.port = _free_port()
        self.argv = [CHROMA, "run", "--path", str(workdir / "chroma"), "--host", "127.0.0.1"]
        self.argv += ["--port", str(self.port)]
        self.log = workdir / "chroma.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its ``http://`` URL."""
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        """Whether its heartbeat answers now."""
        import httpx

        try:
            return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        """Start it (on its data of before, if any) and wait until it answers."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self.answers, 60, "the Chroma server")

    def kill(self) -> None:
        """SIGKILL it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def throwaway_chroma(tmp_path: Path) -> Iterator[ThrowawayChroma]:
    """A running Chroma server of the test's own; killed after the test."""
    server = ThrowawayChroma(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs mounted for the test (root only), unmounted after it.

    Mounted at ``<tmp>/disk/data``: a server's log beside its data directory stays off it.
    """
    where = tmp_path / "disk" / "data"
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode()[:200]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; return the filler file."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(chunk[:size])
            except OSError:
                continue
    return filler
