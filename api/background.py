"""In-process background work for the embedded default.

Tasks run in worker threads and are awaited at shutdown. They are not durable: a crash
loses what was pending. The Workers issue moves this work to Celery with a persistent
queue; until then, only work that can be redone (distillation) runs here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """Runs plain functions in threads off the request path."""

    def __init__(self) -> None:
        """Start with nothing pending."""
        self._tasks: set[asyncio.Task[Any]] = set()

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a thread; failures are logged, never raised to the caller."""

        async def run() -> None:
            try:
                await asyncio.to_thread(fn, *args)
            except Exception:
                log.exception("background task %s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Tasks not finished yet."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every pending task."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
