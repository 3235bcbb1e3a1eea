"""A counting gate for decodes that can also be closed for exclusive work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """A request was cancelled while it waited for a slot."""


class GenerationGate:
    """Admits up to ``slots`` holders at once, or one exclusive holder alone.

    A semaphore for decodes, and a writer lock for work that changes the shared model
    (loading an adapter). A waiting exclusive holder keeps new decodes out, so it is not
    starved by a steady stream of requests.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._slots = slots
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @property
    def active(self) -> int:
        """Slots held now."""
        return self._active

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one slot for the duration of the block.

        Args:
            cancel: Checked while waiting; when set, the wait ends with :class:`Cancelled`.

        Raises:
            Cancelled: ``cancel`` was set before a slot was free.
        """
        with self._cond:
            while self._exclusive or self._exclusive_waiting or self._active >= self._slots:
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                # A short timeout so a cancel set by another thread is noticed.
                self._cond.wait(timeout=0.05 if cancel is not None else None)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone: wait for running slots to end and keep new ones out."""
        with self._cond:
            self._exclusive_waiting += 1
            try:
                while self._exclusive or self._active:
                    self._cond.wait()
            finally:
                self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
