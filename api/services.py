"""Wiring: builds the long-lived services from settings, once per process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from adapters.backend import ChatBackend, make_backend
from adapters.deletion import derived_files
from adapters.registry import install_retirement_hook
from api.metrics import Metrics
from api.settings import Settings
from graph.builder import build_preview_graph, build_turn_graph
from graph.checkpoint import open_checkpointer
from graph.context import Services
from graph.prompts import PromptLibrary
from graph.runner import TurnRunner
from memory.extraction.extractor import EXTRACTION_PROMPT, EXTRACTION_PROMPT_VERSION, make_extractor
from memory.extraction.summaries import SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION
from memory.persona.instructions_llm import make_detector
from memory.records import db, repo
from memory.records.store import RecordStore
from memory.retrieval.embeddings import MiniLMEmbedder
from memory.retrieval.lexical import make_lexical_index
from memory.retrieval.protocols import Embedder
from memory.retrieval.vectors import VectorSettings, make_vector_index
from memory.service import MemoryService
from workers import submit
from workers.app import make_celery
from workers.context import WorkerContext
from workers.embedded import EmbeddedWorker
from workers.queue import JobQueue

log = logging.getLogger(__name__)


@dataclass
class AppServices:
    """Everything a request handler may use; kept on ``app.state.services``."""

    settings: Settings
    engine: Engine
    store: RecordStore
    backend: ChatBackend
    runner: TurnRunner
    prompts: PromptLibrary
    metrics: Metrics
    memory: MemoryService
    jobs: JobQueue
    worker: EmbeddedWorker | None
    """The embedded worker, when ``settings.worker.embedded``."""


def bootstrap_admin_key(store: RecordStore, settings: Settings) -> str | None:
    """When no admin key is configured, create one on first start and return it (once)."""
    if settings.admin_key is not None:
        return None
    with store.session() as session:
        key = repo.ensure_admin_key(session)
        session.commit()
    return key


def build_memory(
    settings: Settings, engine: Engine, embedder: Embedder | None = None
) -> MemoryService:
    """The memory service over the record store, Chroma and the database's full text."""
    m = settings.memory
    prompts = PromptLibrary()  # memory never imports graph: its prompts are passed in
    embedder = embedder or MiniLMEmbedder(
        device=m.embed_device,
        batch_size=m.embed_batch_size,
        backend=m.embed_backend,
        onnx_cache_dir=settings.model.cache_dir,
        batch_threads=m.embed_batch_threads,
    )
    return MemoryService(
        engine,
        embedder=embedder,
        vectors=make_vector_index(VectorSettings(url=m.vector_url, path=m.vector_path)),
        lexical=make_lexical_index(engine),
        extractor=make_extractor(
            m.extractor,
            base_url=m.extractor_base_url,
            model=m.extractor_model,
            api_key=m.extractor_api_key,
            prompt_template=prompts.source(EXTRACTION_PROMPT, EXTRACTION_PROMPT_VERSION),
        ),
        settings=m,
        summary_prompt=prompts.render(SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION, {}),
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    backend: ChatBackend | None = None,
    embedder: Embedder | None = None,
) -> AsyncIterator[AppServices]:
    """Open the database, checkpointer and model backend; close them on exit.

    ``backend`` replaces the configured one (tests of HTTP logic use a scripted model);
    ``embedder`` shares one loaded embedding model between several apps (tests).
    """
    engine = await asyncio.to_thread(db.open_engine, settings.db)
    store = RecordStore(engine)
    memory = await asyncio.to_thread(build_memory, settings, engine, embedder)
    if backend is None:
        backend = await asyncio.to_thread(make_backend, settings.model)
    # deletion cascades retire adapters trained on the data and delete its files
    install_retirement_hook(engine, derived_files(settings.model, settings.training, backend))
    prompts = PromptLibrary()
    prompts.source("system", settings.graph.prompt_version)  # fail at start, not per turn
    metrics = Metrics()
    metrics.watch(engine)
    assert settings.graph.checkpoint_url is not None
    worker: EmbeddedWorker | None = None
    try:
        async with open_checkpointer(settings.graph.checkpoint_url) as saver:
            jobs = JobQueue(make_celery(settings), engine, settings.worker)
            services = Services(
                store=store,
                backend=backend,
                prompts=prompts,
                settings=settings.graph,
                memory=memory,
                after_turn=submit.after_turn(jobs),
                detect=make_detector(
                    settings.memory.instruction_detector,
                    base_url=settings.memory.extractor_base_url,
                    model=settings.memory.extractor_model,
                    api_key=settings.memory.extractor_api_key,
                    prompt_template=prompts.source("instruction_detect", "v1"),
                ),
            )
            runner = TurnRunner(
                graph=build_turn_graph().compile(checkpointer=saver),
                preview_graph=build_preview_graph().compile(),
                services=services,
            )
            if settings.worker.embedded:
                context = WorkerContext(
                    engine=engine,
                    memory=memory,
                    make_graph_services=lambda: services,
                    session_idle_s=settings.worker.session_idle_s,
                )
                worker = EmbeddedWorker(settings, context)
                await asyncio.to_thread(worker.start)
                await asyncio.to_thread(jobs.sweep)  # jobs whose messages a crash lost
            yield AppServices(
                settings=settings,
                engine=engine,
                store=store,
                backend=backend,
                runner=runner,
                prompts=prompts,
                metrics=metrics,
                memory=memory,
                jobs=jobs,
                worker=worker,
            )
            await runner.drain()
    finally:
        if worker is not None:  # finishes running tasks, puts taken ones back
            await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(memory.wait_dense)  # deferred vectors of history imports
        engine.dispose()
