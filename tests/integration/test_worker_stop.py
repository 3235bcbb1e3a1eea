"""`attune serve` stopped while its embedded worker runs a job: it exits in seconds, and
the job runs again after a restart (issue 15: the stop used to wait a minute and leave the
job ``running``).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from memory.records import db, jobs
from tests.conftest import ADMIN_KEY
from tests.integration.test_workers import _free_port, _serve, _stop, _wait, _worker_settings
from wiring.settings import Settings
from workers.app import make_celery


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_does_not_wait_for_a_running_job_which_runs_again_after_a_restart(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # Default visibility timeout (1 h) and staleness (60 s): only the stop can bring the
    # message back within this test.
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, worker=_worker_settings())
    port, log = _free_port(), tmp_path / "serve.log"
    engine = db.open_engine(settings.db)
    out = tmp_path / "out"
    out.mkdir()
    (out / "hold").touch()
    queue = settings.worker.queue_name("light")
    server = _serve(settings, port, log, embedded=True)
    try:
        job, _ = jobs.create(
            engine,
            kind="test_hold",
            key="hold:stop",
            queue=queue,
            payload={"dir": str(out), "seconds": 600},
            user_id=None,
        )
        make_celery(settings).send_task("attune.test_hold", args=[job.id], queue=queue)
        _wait(lambda: (out / "run-1").exists(), 60, "the job to start")
        server.send_signal(sig)
        # The job would hold the worker for 600 s; the server must not wait for it.
        assert server.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    text = log.read_text()
    assert "Traceback" not in text and "Exception ignored" not in text, text[-3000:]
    released = jobs.get(engine, job.id)
    assert released is not None
    assert (released.status, released.attempts) == ("queued", 0), released
    assert not (out / "done.txt").exists()

    (out / "hold").unlink()
    server = _serve(settings, port, log, embedded=True)
    try:
        finished = _wait(
            lambda: (j := jobs.get(engine, job.id)) is not None and j.status == "succeeded" and j,
            60,
            "the job after the restart",
        )
        assert finished.attempts == 1 and finished.result == {"run": 2}
        assert (out / "done.txt").read_text().split() == [job.id]
    finally:
        _stop(server)
        engine.dispose()
