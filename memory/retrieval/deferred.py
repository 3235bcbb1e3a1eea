"""Deferred dense indexing: vectors written by one background thread after an import.

``MemoryService.import_turns`` with ``import_dense = "deferred"`` writes rows and terms at
once and leaves the vectors to this queue, so a large import returns before its
embeddings are computed (lexical and hybrid search find the turns already).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial

log = logging.getLogger(__name__)

IndexFn = Callable[[str, Sequence[str], Mapping[str, str]], int]
"""Indexes ``(user_id, memory_ids, keys)`` densely (``keys``: memory id → the text to
embed); returns how many were indexed."""


class DeferredIndexer:
    """One background thread (started on first use) running dense indexing jobs in order."""

    def __init__(self, index: IndexFn) -> None:
        """Run ``index`` for each submitted job."""
        self._index = index
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[int]] = set()
        self._users: dict[str, set[Future[int]]] = {}

    def submit(self, by_user: Mapping[str, Mapping[str, str]]) -> None:
        """Queue a job per user for their memories (memory id → key to embed)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="dense-index")
            for user_id, keys in by_user.items():
                future = self._pool.submit(self._logged, user_id, list(keys), dict(keys))
                self._users.setdefault(user_id, set()).add(future)
                self._pending.add(future)
                future.add_done_callback(self._pending.discard)
                future.add_done_callback(partial(self._done, user_id))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the queued jobs are done; ``False`` on timeout.

        Raises:
            Exception: The failure of a job that ended with one.
        """
        with self._lock:
            pending = list(self._pending)
        done, not_done = wait(pending, timeout=timeout)
        for future in done:
            future.result()  # re-raise a failure
        return not not_done

    def busy(self, user_id: str) -> bool:
        """Whether a job for ``user_id`` is queued or running in this process."""
        with self._lock:
            return bool(self._users.get(user_id))

    def wait_user(self, user_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``user_id``'s jobs; whether none is left.

        A failed job counts as done here (it was logged; :meth:`wait` re-raises it).
        """
        with self._lock:
            pending = list(self._users.get(user_id, ()))
        if not pending:
            return True
        _done, not_done = wait(pending, timeout=timeout)
        return not not_done

    def _done(self, user_id: str, future: Future[int]) -> None:
        with self._lock:
            futures = self._users.get(user_id)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._users[user_id]

    def _logged(self, user_id: str, memory_ids: Sequence[str], keys: Mapping[str, str]) -> int:
        try:
            return self._index(user_id, memory_ids, keys)
        except Exception:
            log.exception("deferred dense indexing failed for %d memories", len(memory_ids))
            raise
