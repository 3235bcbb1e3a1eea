"""The embedded worker: Celery workers in threads of the ``attune serve`` process.

Why threads, not a subprocess: the default vector store is embedded Chroma, which one
process at a time may open, so distillation must run where the server's memory service
is. What survives a restart is the queue, not the worker: queued messages live in the
SQLite broker file, and a message taken but never acknowledged (the server was killed)
comes back after the visibility timeout.

A graceful stop (SIGTERM, Ctrl-C) takes seconds, not the length of the longest task: the
consumers stop taking messages, running tasks get ``grace`` seconds to end, and the jobs
of those still running are released (back to ``queued``, ``workers.inflight``) before the
consumers' connections close, which puts their messages back. The next start runs them
again; a training job resumes from its checkpoint.

One ``WorkController`` per queue, each on its own Celery app (a worker's queue selection is
stored on its app), so each keeps its own concurrency; beat runs in a thread beside them
(Celery's embedded beat would fork this process). Thread pools cannot enforce hard time
limits (README, "Workers").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from celery.beat import Service
from celery.worker import WorkController
from celery.worker import state as worker_state

from workers.app import AttuneCelery, make_celery
from workers.embedded_pool import EmbeddedPool
from workers.inflight import InFlight

if TYPE_CHECKING:
    from wiring.settings import Settings
    from workers.context import WorkerContext

log = logging.getLogger(__name__)


class _Controller(WorkController):
    """A WorkController that says when its consumer is ready."""

    def __init__(self, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(**kwargs)

    def on_consumer_ready(self, consumer: object) -> None:
        """Called by Celery once the consumer takes messages."""
        self.ready.set()


class EmbeddedWorker:
    """Consumes the light and heavy queues in this process until :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        context: WorkerContext,
        *,
        queues: tuple[Literal["light", "heavy"], ...] = ("light", "heavy"),
        beat: bool = True,
    ) -> None:
        """Prepare workers for ``queues`` that run tasks with ``context`` (not started)."""
        self.settings = settings
        self.context = context
        self.queues = queues
        self.beat = beat
        self.in_flight = InFlight()
        """The jobs its tasks run; :meth:`stop` releases those it does not wait for."""
        self._workers: list[tuple[_Controller, threading.Thread]] = []
        self._beat: tuple[Service, threading.Thread] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start a worker thread per queue (and beat) and wait until each consumes."""
        w = self.settings.worker
        apps: list[AttuneCelery] = []
        for i, queue in enumerate(self.queues):
            q = getattr(w, queue)
            app = make_celery(self.settings, context=self.context, in_flight=self.in_flight)
            app.finalize(auto=True)
            apps.append(app)
            if i == 0:
                # Thread pools look tasks up on the process's default app (Celery's own
                # worker command sets it too); both queues' apps share settings and context.
                app.set_default()
            controller = _Controller(
                app=app,
                hostname=f"{queue}@embedded-{id(self):x}",
                # A prefork child could not share this process's Chroma; threads can. A
                # solo queue runs one task at a time too, on a thread a stop can leave.
                concurrency=1 if q.pool == "solo" else q.concurrency,
                pool=EmbeddedPool,
                queues=[w.queue_name(queue)],
                loglevel=logging.getLevelName(logging.getLogger().level),
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
                ready_callback=None,
            )
            thread = threading.Thread(
                target=controller.start, name=f"attune-worker-{queue}", daemon=True
            )
            thread.start()
            self._workers.append((controller, thread))
        for controller, _ in self._workers:
            if not controller.ready.wait(timeout):
                raise RuntimeError("the embedded worker did not start")
        if self.beat and apps:
            self._beat = _start_beat(apps[0])
        log.info("embedded worker consuming %s", ", ".join(self.queues))

    def stop(self, grace: float = 5.0, timeout: float = 10.0) -> None:
        """Stop within about ``grace + timeout`` seconds, whatever the tasks in hand.

        Beat stops; the consumers take no more messages; running tasks get ``grace``
        seconds to end. The jobs of tasks still running are then released (``queued``
        again, the attempt not counted) and their messages put back when the consumers'
        connections close, which the worker threads get ``timeout`` seconds to do. The
        abandoned task threads end with the process.
        """
        if self._beat is not None:
            service, beat_thread = self._beat
            service.stop()
            beat_thread.join(timeout)
            self._beat = None
        if not self._workers:
            return
        worker_state.should_stop = 0  # type: ignore[assignment]  # as Celery's SIGTERM handler
        try:
            deadline = time.monotonic() + grace
            for _, thread in self._workers:
                thread.join(max(0.0, deadline - time.monotonic()))
            if any(thread.is_alive() for _, thread in self._workers):
                self.in_flight.release_all(self.context.engine)
            deadline = time.monotonic() + timeout
            for _, thread in self._workers:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.warning("embedded worker thread %s did not stop", thread.name)
        finally:
            worker_state.should_stop = None
            self._workers.clear()


def _start_beat(app: AttuneCelery) -> tuple[Service, threading.Thread]:
    """Run beat's schedule for ``app`` in a daemon thread; stop it with ``Service.stop``."""
    # Celery's threaded embedded beat wakes at least every second, so it stops promptly.
    service = Service(app, max_interval=1, schedule_filename=app.conf.beat_schedule_filename)

    def run() -> None:
        app.set_current()  # as Celery's own beat thread: the scheduler sends through it
        service.start()

    thread = threading.Thread(target=run, name="attune-beat", daemon=True)
    thread.start()
    return service, thread
