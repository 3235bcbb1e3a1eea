"""The embedded worker: Celery workers in threads of the ``attune serve`` process.

Why threads, not a subprocess: the default vector store is embedded Chroma, which one
process at a time may open, so distillation must run where the server's memory service
is. What survives a restart is the queue, not the worker: queued messages live in the
SQLite broker file, a message taken but never acknowledged (the server was killed) comes
back after the visibility timeout, and at a graceful stop (SIGTERM, Ctrl-C) the worker
finishes its running tasks and puts back the ones it had taken but not started.

One ``WorkController`` per queue, each on its own Celery app (a worker's queue selection is
stored on its app), so each keeps its own concurrency; the light one also runs beat.
Thread pools cannot enforce hard time limits (README, "Workers").
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Literal

from celery.worker import WorkController
from celery.worker import state as worker_state

from workers.app import make_celery

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
        self._workers: list[tuple[_Controller, threading.Thread]] = []

    def start(self, timeout: float = 60.0) -> None:
        """Start a worker thread per queue and wait until each consumes."""
        w = self.settings.worker
        for i, queue in enumerate(self.queues):
            q = getattr(w, queue)
            app = make_celery(self.settings, context=self.context)
            app.finalize(auto=True)
            if i == 0:
                # Thread pools look tasks up on the process's default app (Celery's own
                # worker command sets it too); both queues' apps share settings and context.
                app.set_default()
            controller = _Controller(
                app=app,
                hostname=f"{queue}@embedded-{id(self):x}",
                concurrency=q.concurrency,
                # A prefork child could not share this process's Chroma; threads can.
                pool="solo" if q.pool == "solo" else "threads",
                queues=[w.queue_name(queue)],
                loglevel=logging.getLevelName(logging.getLogger().level),
                without_heartbeat=True,
                without_mingle=True,
                without_gossip=True,
                beat=self.beat and i == 0,
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
        log.info("embedded worker consuming %s", ", ".join(self.queues))

    def stop(self, timeout: float = 60.0) -> None:
        """Warm shutdown: finish running tasks, put back taken ones, join the threads."""
        if not self._workers:
            return
        worker_state.should_stop = 0  # type: ignore[assignment]  # as Celery's SIGTERM handler
        try:
            for _, thread in self._workers:
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("embedded worker thread %s did not stop", thread.name)
        finally:
            worker_state.should_stop = None
            self._workers.clear()
