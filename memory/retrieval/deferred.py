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

log = logging.getLogger(__name__)

IndexFn = Callable[[str, Sequence[str]], int]
"""Indexes ``(user_id, memory_ids)`` densely; returns how many were indexed."""


class DeferredIndexer:
    """One background thread (started on first use) running dense indexing jobs in order."""

    def __init__(self, index: IndexFn) -> None:
        """Run ``index`` for each submitted job."""
        self._index = index
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[int]] = set()
        self._users: dict[str, int] = {}

    def submit(self, by_user: Mapping[str, Sequence[str]]) -> None:
        """Queue a job per user for their memory ids."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="dense-index")
            for user_id, ids in by_user.items():
                self._users[user_id] = self._users.get(user_id, 0) + 1
                future = self._pool.submit(self._logged, user_id, ids)
                self._pending.add(future)
                future.add_done_callback(self._pending.discard)

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
            return self._users.get(user_id, 0) > 0

    def _logged(self, user_id: str, memory_ids: Sequence[str]) -> int:
        try:
            return self._index(user_id, memory_ids)
        except Exception:
            log.exception("deferred dense indexing failed for %d memories", len(memory_ids))
            raise
        finally:
            with self._lock:
                self._users[user_id] -= 1
                if not self._users[user_id]:
                    del self._users[user_id]
