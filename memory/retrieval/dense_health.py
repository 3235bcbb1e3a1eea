"""Whether the dense index answers, so that search and writes go on without it.

A Chroma server that is down must not fail a turn: search ranks by the lexical index alone
and says so (:class:`SearchResults` ``degraded``), and new memories get their rows and
terms at once and their vectors once the server is back (the user's vectors are *owed*).
After a failure the index is left alone for ``retry_s`` (a server that times out would
otherwise cost every search its timeout); the next call after that tries it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from memory.views import MemoryView

log = logging.getLogger(__name__)

DENSE = "dense"
"""The ``degraded`` entry of a search ranked without the dense index."""


class SearchResults(list[MemoryView]):
    """A search's results (a plain list of views), with what was left out of the ranking.

    ``degraded`` names the retrievers that could not be asked (``"dense"`` while the vector
    index is down); empty when the ranking is whole.
    """

    degraded: tuple[str, ...] = ()


def degraded(results: Sequence[MemoryView]) -> tuple[str, ...]:
    """What ``results`` (of ``MemoryService.search``) were ranked without; ``()``: nothing."""
    return results.degraded if isinstance(results, SearchResults) else ()


def vector_index_down(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the vector index server did not answer."""
    import httpx

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        if isinstance(e, ValueError) and "Could not connect to a Chroma server" in str(e):
            return True
        todo += [e.__cause__, e.__context__]
    return False


class DenseHealth:
    """The dense index's state in this process: up, or down since a failure.

    Thread-safe: searches and writes run in worker threads.
    """

    def __init__(
        self,
        retry_s: float,
        *,
        repay: Callable[[str, list[str]], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Leave a failed index alone for ``retry_s`` seconds before trying it again.

        ``repay(user_id, memory_ids)`` writes owed vectors; it is called in a background
        thread once the index answers again.
        """
        self.retry_s = retry_s
        self.repay = repay
        self.clock = clock
        self.failures = 0
        """Calls that found the index down (a counter, for metrics)."""
        self.skipped = 0
        """Searches ranked without the dense index because it was down (for metrics)."""
        self._down_since: float | None = None
        self._last_try = 0.0
        self._owed: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """Whether the last call to the index failed."""
        return self._down_since is not None

    def should_try(self) -> bool:
        """Whether to call the index now: it is up, or ``retry_s`` passed since the last try."""
        with self._lock:
            if self._down_since is None:
                return True
            if self.clock() - self._last_try >= self.retry_s:
                self._last_try = self.clock()
                return True
            return False

    def failed(self, exc: BaseException) -> None:
        """Record that a call found the index down (logged once per outage)."""
        with self._lock:
            self.failures += 1
            self._last_try = self.clock()
            if self._down_since is None:
                self._down_since = self._last_try
                # The exception's type only: nothing of a query or memory is logged.
                log.warning(
                    "vector index not answering (%s): search is lexical only, new vectors "
                    "are owed until it is back",
                    type(exc).__name__,
                )

    def owe(self, user_id: str, memory_ids: Iterable[str]) -> None:
        """Remember memories written without vectors while the index was down."""
        with self._lock:
            self._owed.setdefault(user_id, set()).update(memory_ids)

    def succeeded(self) -> None:
        """Record a call that worked; write the vectors owed since the outage, if any."""
        if self._down_since is None and not self._owed:  # the common case, lock-free
            return
        with self._lock:
            if self._down_since is None and not self._owed:
                return
            if self._down_since is not None:
                log.warning(
                    "vector index answering again after %.0f s; writing %d owed vector(s)",
                    self.clock() - self._down_since,
                    sum(len(v) for v in self._owed.values()),
                )
            self._down_since = None
            owed, self._owed = self._owed, {}
        if owed and self.repay is not None:
            threading.Thread(target=self._repay, args=(owed,), name="dense-repay").start()

    def _repay(self, owed: dict[str, set[str]]) -> None:
        assert self.repay is not None
        for user_id, ids in owed.items():
            try:
                self.repay(user_id, sorted(ids))
            except Exception as exc:  # down again: owed until the next recovery
                self.owe(user_id, ids)
                if not vector_index_down(exc):
                    log.exception("writing owed vectors failed")
                    continue
                self.failed(exc)


def ranked(
    health: DenseHealth, run: Callable[[bool], list[MemoryView]], *, wants_dense: bool
) -> SearchResults:
    """``run(dense)``'s results, ranked without the dense index while it is down.

    ``wants_dense``: the search would ask the dense index (hybrid with vectors ready). A
    call that finds the index down is counted, and the search is run again without it.
    """
    if not wants_dense:
        return SearchResults(run(False))
    if health.should_try():
        try:
            found = SearchResults(run(True))
        except Exception as exc:
            if not vector_index_down(exc):
                raise
            health.failed(exc)
        else:
            health.succeeded()
            return found
    health.skipped += 1  # a metric's count: a lost increment under a race is harmless
    results = SearchResults(run(False))
    results.degraded = (DENSE,)
    return results


def index_or_owe(
    health: DenseHealth,
    index: Callable[[bool], None],
    user_id: str,
    memory_ids: Sequence[str],
    *,
    dense: bool = True,
) -> None:
    """``index(dense)``; while the dense index is down, ``index(False)``, vectors owed.

    ``index(False)`` writes the terms alone; the owed vectors of ``memory_ids`` are
    written when the index answers again (:meth:`DenseHealth.succeeded`).
    """
    if dense and health.should_try():
        try:
            index(True)
        except Exception as exc:
            if not vector_index_down(exc):
                raise
            health.failed(exc)
        else:
            health.succeeded()
            return
    index(False)
    if dense:
        health.owe(user_id, memory_ids)
