"""The composition root: the long-lived services, built from settings the same way everywhere.

Every entry point — ``attune serve`` (``api.services``), the Celery worker
(``workers.context``), the CLI and the evals — builds what it needs here, so the record
store, the memory service, the chat backend, the graph's services and the deletion cascades
are wired once, with nothing for an entry point to remember. The HTTP layer adds only what
is its own (metrics, the thread checkpointer, the turn runner, the embedded worker).

Nothing here is built at import; :func:`build_core` does the work and
:meth:`Core.close` undoes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from adapters.backend import ChatBackend, make_backend
from adapters.deletion import AdapterPurger, derived_files
from adapters.export import TrainingExport
from adapters.placements import DbPlacementLog
from adapters.workdirs import WorkDirPurger
from graph.context import AfterTurn, Services
from graph.experiments import ExperimentSource
from graph.prompts import PromptLibrary
from graph.thread_purge import ThreadStatePurger
from memory.config import MemorySettings
from memory.deletion import Deletion
from memory.export import UserExport
from memory.extraction.disclosures import DisclosingExtractor, DisclosureClassifier
from memory.extraction.extractor import (
    EXTRACTION_PROMPT,
    Extractor,
    make_extractor,
)
from memory.extraction.summaries import SUMMARY_PROMPT
from memory.persona.instructions_llm import make_detector
from memory.records import db
from memory.records.store import RecordStore
from memory.retrieval.embeddings import MiniLMEmbedder
from memory.retrieval.lexical import make_lexical_index
from memory.retrieval.protocols import Embedder
from memory.retrieval.vectors import VectorSettings, make_vector_index
from memory.scrub import SqliteFile, StorageScrubber, chroma_embedded, sqlite_path
from memory.service import MemoryService
from wiring.permissions import secure_data_dir
from wiring.settings import Settings


def build_memory(
    settings: Settings, engine: Engine, embedder: Embedder | None = None
) -> MemoryService:
    """The memory service over the record store, Chroma and the database's full text.

    ``embedder`` shares one loaded embedding model between several services (tests, evals).
    """
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
        extractor=_with_disclosures(
            make_extractor(
                m.extractor,
                base_url=m.extractor_base_url,
                model=m.extractor_model,
                api_key=m.extractor_api_key,
                prompt_template=prompts.source(
                    EXTRACTION_PROMPT, settings.graph.version_of(EXTRACTION_PROMPT)
                ),
            ),
            m,
            embedder,
        ),
        settings=m,
        summary_prompt=prompts.render(
            SUMMARY_PROMPT, settings.graph.version_of(SUMMARY_PROMPT), {}
        ),
    )


def _with_disclosures(extractor: Extractor, m: MemorySettings, embedder: Embedder) -> Extractor:
    """The rule extractor plus the disclosure classifier on the service's embedder."""
    if m.extractor != "rules" or m.disclosure_threshold == 1:
        return extractor
    classifier = DisclosureClassifier.load(threshold=m.disclosure_threshold)
    return DisclosingExtractor(extractor, classifier, embedder)


@dataclass
class Core:
    """What every entry point shares: records, memory, prompts, deletion, the chat backend.

    The chat backend is built on first use (:meth:`backend`): a worker that only distills
    or deletes never loads the model.
    """

    settings: Settings
    engine: Engine
    store: RecordStore
    memory: MemoryService
    prompts: PromptLibrary
    deletion: Deletion
    _backend: ChatBackend | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _owns_backend: bool = False
    """Whether :meth:`backend` built the backend (then :meth:`close` stops it); one given
    to :func:`build_core` belongs to its caller."""

    def backend(self) -> ChatBackend:
        """The configured chat backend, loaded on first call."""
        with self._lock:
            if self._backend is None:
                self._backend = make_backend(self.settings.model)
                self._owns_backend = True
                self._attach_placement_log()
            return self._backend

    def __post_init__(self) -> None:
        self._attach_placement_log()  # a backend given to build_core (tests, the bench)

    def _attach_placement_log(self) -> None:
        """A vllm backend records its placements in the shared table."""
        if self._backend is not None and hasattr(self._backend, "placement_log"):
            self._backend.placement_log = DbPlacementLog(self.engine)

    @property
    def loaded_backend(self) -> ChatBackend | None:
        """The chat backend if it has been loaded, else ``None`` (never loads it)."""
        return self._backend

    def publish(self, name: str, path: Path) -> None:
        """Publish a promoted adapter on the chat backend, loading the backend if needed.

        Every entry point that promotes passes the core as the registry's publisher. In
        the server (and its embedded worker) the serving backend loads the adapter now; a
        worker or CLI in another process loads it into its own backend, which checks that
        it loads, and the server's local engine finds it on disk by name at the next
        request that routes to it.
        """
        self.backend().publish(name, path)

    def unpublish(self, name: str) -> bool:
        """Release an adapter from the backend.

        A local backend never loaded holds none; vLLM servers hold what any process
        published, so a ``vllm`` backend is built (no model load) to unload it there.
        """
        remote = self.settings.model.backend == "vllm"
        backend = self.backend() if remote else self._backend
        return backend.unpublish(name) if backend is not None else False

    @property
    def export(self) -> UserExport:
        """The user export: the memory side and what training holds (thread state: the API)."""
        options = dict(self.settings.training.storage_options)
        return UserExport(self.engine, self.memory, [TrainingExport(self.engine, options)])

    def graph_services(
        self,
        *,
        after_turn: AfterTurn | None = None,
        experiments: ExperimentSource | None = None,
    ) -> Services:
        """The turn graph's services: the one place they are put together.

        Args:
            after_turn: Called once a turn is recorded (the server enqueues distillation);
                ``None`` distills inline (workers, the CLI, benchmarks).
            experiments: The running experiments (the server's); ``None``: none apply.
        """
        settings = self.settings
        m = settings.memory
        return Services(
            store=self.store,
            backend=self.backend(),
            prompts=self.prompts,
            settings=settings.graph,
            memory=self.memory,
            after_turn=after_turn,
            experiments=experiments,
            detect=make_detector(
                m.instruction_detector,
                base_url=m.extractor_base_url,
                model=m.extractor_model,
                api_key=m.extractor_api_key,
                prompt_template=self.prompts.source(
                    "instruction_detect", settings.graph.version_of("instruction_detect")
                ),
                embedder=self.memory.embedder,
            ),
        )

    def close(self) -> None:
        """Finish deferred vector writes, stop the backend's health checks, release the DB."""
        self.memory.wait_dense()  # deferred vectors of history imports
        close = getattr(self._backend, "close", None)  # the vllm backend's health checks
        if self._owns_backend and callable(close):
            close()
        self.engine.dispose()


def build_deletion(core: Core) -> Deletion:
    """The deletion cascades, with everything derived from users' data they must reach."""
    settings = core.settings
    # Only a backend this process already loaded can be serving the adapter.
    files = derived_files(settings.model, settings.training, core.unpublish)
    assert settings.graph.checkpoint_url is not None
    return Deletion(
        core.engine,
        core.memory,
        purgers=[
            AdapterPurger(core.engine, files),
            WorkDirPurger(core.engine, settings.training.work_dir),  # after: snapshots gone
            ThreadStatePurger(core.engine, settings.graph.checkpoint_url),
        ],
        finishers=[StorageScrubber(sqlite_files(settings))],
    )


def sqlite_files(settings: Settings) -> list[SqliteFile]:
    """The deployment's SQLite files that deleted text can linger in (none on servers)."""
    files: list[SqliteFile] = []
    records = sqlite_path(settings.db.url)
    if records is not None:
        files.append(SqliteFile(records, fts_tables=("memory_fts",)))
    checkpoints = sqlite_path(settings.graph.checkpoint_url)
    if checkpoints is not None:
        files.append(SqliteFile(checkpoints))
    m = settings.memory
    if m.vector_url is None and m.vector_path is not None:
        files.append(chroma_embedded(Path(m.vector_path)))
    return files


def build_core(
    settings: Settings,
    *,
    backend: ChatBackend | None = None,
    embedder: Embedder | None = None,
) -> Core:
    """Open the record store (migrating it) and build the services on it.

    Args:
        settings: The process's settings.
        backend: Replaces the configured chat backend (tests of logic use a scripted one).
        embedder: Shares one loaded embedding model (tests, evals).
    """
    engine = db.open_engine(settings.db)
    memory = build_memory(settings, engine, embedder)
    secure_data_dir(settings.data_dir)  # once its databases and vector files exist
    prompts = PromptLibrary()
    for name, version in settings.graph.active_versions().items():
        prompts.source(name, version)  # a missing prompt version fails at start, not per turn
    core = Core(
        settings=settings,
        engine=engine,
        store=RecordStore(engine),
        memory=memory,
        prompts=prompts,
        deletion=Deletion(engine, memory),  # replaced below, once the core exists
        _backend=backend,
    )
    core.deletion = build_deletion(core)
    return core
