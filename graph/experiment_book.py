"""The running experiments of one process: assignment and exposures for ``load_context``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from graph.experiments import Assignment, assignments
from memory.records import experiments as records
from memory.records.tables import utcnow


class ExperimentBook:
    """An :class:`graph.experiments.ExperimentSource` over the records database.

    The list of experiments is read at most every ``refresh_s`` seconds, so one created or
    stopped by any process takes effect within that time (at once in this process, after
    :meth:`invalidate`).
    """

    def __init__(self, engine: Engine, *, refresh_s: float = 2.0) -> None:
        """Read and write through ``engine`` (the records database, migrated)."""
        self.engine = engine
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._cached: list[records.Experiment] = []
        self._read_at = float("-inf")

    def invalidate(self) -> None:
        """Read the list again at the next turn (after a create or a stop here)."""
        with self._lock:
            self._read_at = float("-inf")

    def current(self) -> list[records.Experiment]:
        """The experiments not stopped, at most ``refresh_s`` old."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                self._cached = records.running(self.engine)
                self._read_at = time.monotonic()
            return self._cached

    def assign_now(self, user_id: str, group_id: str | None) -> list[Assignment]:
        """The user's arms now (from the cached list: no query most turns)."""
        return assignments(self.current(), user_id, group_id, utcnow())

    async def assign(self, user_id: str, group_id: str | None) -> list[Assignment]:
        """:meth:`assign_now`; in a worker thread only when the list is read again."""
        if time.monotonic() - self._read_at < self.refresh_s:
            return self.assign_now(user_id, group_id)
        return await asyncio.to_thread(self.assign_now, user_id, group_id)

    async def expose(
        self, turn_id: str, user_id: str, arms: Sequence[Assignment], *, failed: bool = False
    ) -> None:
        """Record the turn's exposures (written after its reply, off the first token's path)."""
        if arms:
            chosen = {a["experiment_id"]: a["arm"] for a in arms}
            await asyncio.to_thread(
                records.expose,
                self.engine,
                turn_id=turn_id,
                user_id=user_id,
                arms=chosen,
                failed=failed,
            )
