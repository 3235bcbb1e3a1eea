"""The served process: the core plus thread state, the turn runner, the job queue and worker.

``attune serve`` (``api.services``) and the end-to-end benchmarks (``evals``) run exactly
this. It is the one module of the root that knows ``workers`` (the job queue and the
embedded worker); ``workers`` imports only ``wiring.services`` and ``wiring.settings``, and
only inside functions, so nothing imports in a circle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from adapters.backend import ChatBackend
from graph.builder import build_preview_graph, build_turn_graph
from graph.checkpoint import open_checkpointer
from graph.experiment_book import ExperimentBook
from graph.prompts import PromptLibrary
from graph.runner import TurnRunner
from memory.deletion import Deletion
from memory.records.store import RecordStore
from memory.retrieval.protocols import Embedder
from memory.service import MemoryService
from wiring.services import Core, build_core
from wiring.settings import Settings
from workers import submit
from workers.app import make_celery
from workers.context import WorkerContext
from workers.embedded import EmbeddedWorker
from workers.queue import JobQueue

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """Everything a served process uses; the fields past ``core`` are taken from it."""

    settings: Settings
    core: Core
    engine: Engine
    store: RecordStore
    backend: ChatBackend
    runner: TurnRunner
    prompts: PromptLibrary
    memory: MemoryService
    deletion: Deletion
    jobs: JobQueue
    worker: EmbeddedWorker | None
    """The embedded worker, when ``settings.worker.embedded``."""
    experiments: ExperimentBook
    """The running experiments, applied to every turn."""


@asynccontextmanager
async def open_stack(
    settings: Settings,
    *,
    backend: ChatBackend | None = None,
    embedder: Embedder | None = None,
) -> AsyncIterator[Stack]:
    """Open the core, the checkpointer, the runner and (if configured) the worker.

    ``backend`` replaces the configured one (tests of HTTP logic use a scripted model);
    ``embedder`` shares one loaded embedding model between several stacks (tests).
    Everything is closed on exit: running turns finish, the worker puts taken tasks back.
    """
    core = await asyncio.to_thread(build_core, settings, backend=backend, embedder=embedder)
    assert settings.graph.checkpoint_url is not None
    worker: EmbeddedWorker | None = None
    try:
        loaded = await asyncio.to_thread(core.backend)
        # Messages whose reply a crash cut off: accepted, stored, never answered.
        stale = timedelta(seconds=settings.graph.interrupted_after_s)
        marked = await asyncio.to_thread(core.store.sweep_interrupted, older_than=stale)
        if marked:
            log.warning("%d user message(s) left without a reply marked interrupted", marked)
        async with open_checkpointer(settings.graph.checkpoint_url) as saver:
            jobs = JobQueue(make_celery(settings), core.engine, settings.worker)
            book = ExperimentBook(core.engine, refresh_s=settings.experiments.refresh_s)
            services = core.graph_services(after_turn=submit.after_turn(jobs), experiments=book)
            runner = TurnRunner(
                graph=build_turn_graph().compile(checkpointer=saver),
                preview_graph=build_preview_graph().compile(),
                services=services,
            )
            if settings.worker.embedded:
                context = WorkerContext(core=core, make_graph_services=lambda: services)
                worker = EmbeddedWorker(settings, context)
                await asyncio.to_thread(worker.start)
                await asyncio.to_thread(jobs.sweep)  # jobs whose messages a crash lost
            yield Stack(
                settings=settings,
                core=core,
                engine=core.engine,
                store=core.store,
                backend=loaded,
                runner=runner,
                prompts=core.prompts,
                memory=core.memory,
                deletion=core.deletion,
                jobs=jobs,
                worker=worker,
                experiments=book,
            )
            await runner.drain()
    finally:
        if worker is not None:  # finishes running tasks, puts taken ones back
            await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(core.close)
