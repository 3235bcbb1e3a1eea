"""The embedded worker's task pool: Celery's thread pool, on threads a stop may abandon.

Celery's thread pool runs tasks on a ``ThreadPoolExecutor``, whose threads the interpreter
joins at exit, and its warm stop waits for every running task: a server stopping with a
training job in hand would wait for the training to end. This pool runs tasks on daemon
threads, and its stop waits only until the tasks end or the worker gives up on them
(:attr:`workers.inflight.InFlight.given_up`), after releasing their jobs. Celery then
closes the consumer's connection, which puts the messages of unfinished tasks back.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from celery.concurrency.thread import TaskPool

from workers.app import attune_app

log = logging.getLogger(__name__)

_Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class DaemonExecutor:
    """Runs calls on up to ``limit`` daemon threads; the process may exit while they run."""

    def __init__(self, limit: int, name: str = "attune-task") -> None:
        """No thread yet: each call starts one while fewer than ``limit`` exist."""
        self._limit = limit
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()  # Celery's pool info counts them
        self._lock = threading.Lock()
        self._unfinished = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)``; its future holds the result."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is stopped")
            self._unfinished += 1
            if len(self._threads) < min(self._unfinished, self._limit):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.add(thread)
                thread.start()
        self._calls.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args = call
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # the future carries it; Celery reports it
                    future.set_exception(exc)
            with self._lock:
                self._unfinished -= 1
                self._idle.notify_all()

    def wait_idle(self, stop: threading.Event, poll: float = 0.1) -> None:
        """Return when no call is queued or running, or once ``stop`` is set."""
        with self._lock:
            while self._unfinished and not stop.is_set():
                self._idle.wait(poll)

    def shutdown(self, wait: bool = True) -> None:
        """Take no more calls and cancel queued ones; with ``wait``, join idle threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:  # calls not started: cancelled (their messages go back unacknowledged)
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                call[0].cancel()
                with self._lock:
                    self._unfinished -= 1
        for _ in threads:
            self._calls.put(None)
        if wait:
            for thread in threads:
                thread.join()


class EmbeddedPool(TaskPool):
    """Celery's thread pool on a :class:`DaemonExecutor`, with a stop that can give up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As Celery's thread pool (``limit`` threads at most)."""
        super().__init__(*args, **kwargs)
        self.executor.shutdown(wait=False)  # Celery's own, unused (it has no thread yet)
        self.executor: DaemonExecutor = DaemonExecutor(int(self.limit or 1))

    def on_stop(self) -> None:
        """Wait until running tasks end or the worker gives up on them; then stop.

        Without ``given_up``, this is Celery's warm stop. Once the worker has released the
        jobs of the tasks still running, their threads are left to the process's exit.
        """
        given_up = attune_app(self.app).in_flight.given_up
        self.executor.wait_idle(given_up)
        if given_up.is_set():
            log.info("the embedded worker's pool stops without its running tasks")
        self.executor.shutdown(wait=not given_up.is_set())
