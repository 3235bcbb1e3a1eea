"""Acceptance of "deletion really deletes": a canary must leave no byte anywhere.

Two canaries flow through everything Attune derives from a user's data (see
``canary_support.seed``): one belongs to a turn (the user's message and the edit given as
feedback on its reply) that is then deleted, turn by turn; the other to a user (a turn,
an edit and a writing sample) who is then deleted. Once the deletion jobs (and the
retrains they queue) are done:

* embedded configuration (SQLite, Chroma ``PersistentClient``, SQLite broker): no file
  under the data directory holds either canary's bytes — the record store and its WAL,
  thread checkpoints and their WAL, Chroma's SQLite file and segment files, the broker,
  dataset snapshots, adapter weights, training work directories (one left by an
  interrupted run) and the log file — and no FTS5 index holds it as a term;
* scale-out configuration (PostgreSQL, Chroma server, Redis broker): no column of any
  table, no Chroma collection and no Redis key or value holds it, and no file under the
  data directory (snapshots, weights, work directories, logs) does.

The chat model is scripted (it never repeats the canary); training runs on the tiny
real model (``tests.tiny_lm``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.records import db
from tests.conftest import Api, open_api
from tests.fakes import ScriptedBackend
from tests.integration import canary_support as canary
from tests.integration import training_support
from tests.integration.test_workers import _env as worker_env
from tests.integration.test_workers import _spawn as spawn
from tests.integration.test_workers import _stop as stop
from tests.integration.test_workers import chroma_url, redis_url
from tests.integration.training_support import for_tiny_model
from wiring.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
tiny = training_support.tiny
__all__ = ["chroma_url", "redis_url", "tiny"]  # fixtures used by name

REPLY = "Noted, thank you."


@pytest.fixture
def log_file(settings: Settings) -> Iterator[Path]:
    """Everything logged at INFO and above, written where a deployment keeps its data."""
    path = settings.data_dir / "logs" / "attune.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield path
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def _canaries() -> tuple[str, str, str]:
    """The deleted turn's, the edit on its reply's, the deleted user's."""
    # Lower-case letters and digits: the FTS tokenizer keeps each as one unchanged term.
    return tuple(f"canary{kind}{uuid.uuid4().hex[:12]}" for kind in ("turn", "edit", "user"))  # type: ignore[return-value]


Scan = Callable[[str], dict[str, list[str]]]


async def _flow_and_delete(api: Api, canaries: tuple[str, str, str], scan: Scan) -> dict[str, Any]:
    """Seed the canaries everywhere, delete the turn, its reply and the user; what is left.

    ``scan`` finds where a canary is; before the deletions it must find each in every
    store kind it reports on (so the scans are shown to see copies at all). The turn's
    canary is scanned for right after the turn's own deletion, before its reply's (which
    would hide a copy kept in what was derived from the reply, its index key for one).
    """
    turn_canary, edit_canary, user_canary = canaries
    a = await canary.seed(api, "turnowner", turn_canary, edit=edit_canary, sample=False)
    b = await canary.seed(api, "userowner", user_canary, edit=user_canary, sample=True)
    for seeded in (a, b):
        await canary.train(api, seeded)
        canary.interrupted_run(api, seeded, run_id=f"interrupted-{seeded.user_id}")
    for seeded, needles in ((a, (turn_canary, edit_canary)), (b, (user_canary,))):
        r = await api.client.get(f"/v1/users/{seeded.user_id}/export", headers=api.auth(seeded.key))
        assert r.status_code == 200 and all(n in r.text for n in needles), "the export holds it"
    for needle in canaries:
        before = scan(needle)
        assert all(before.values()), (needle, before)

    left: dict[str, Any] = {}
    await canary.delete(api, f"/v1/users/{a.user_id}/turns/{a.question_id}", a.key)
    left["turn, before its reply is deleted"] = scan(turn_canary)
    await canary.delete(api, f"/v1/users/{a.user_id}/turns/{a.reply_id}", a.key)
    await canary.delete(api, f"/v1/users/{b.user_id}", b.key)
    for needle in canaries:
        left[needle] = scan(needle)
    work_dir = api.services.settings.training.work_dir
    left["interrupted runs"] = [p.name for p in work_dir.iterdir() if p.name.startswith("inter")]
    return left


def _nothing(left: dict[str, Any]) -> dict[str, Any]:
    """``left`` as it must be: every scan empty."""
    return {k: {kk: [] for kk in v} if isinstance(v, dict) else [] for k, v in left.items()}


@pytest.fixture
def embedded_settings(settings: Settings, tiny: Path) -> Settings:
    for_tiny_model(settings, tiny)
    settings.worker.embedded = True
    return settings


async def test_no_file_under_the_data_dir_holds_a_deleted_canary(
    embedded_settings: Settings, log_file: Path
) -> None:
    canaries = _canaries()
    data_dir = embedded_settings.data_dir

    chroma = data_dir / "vectors" / "chroma.sqlite3"
    vectors_of: dict[str, set[str]] = {c: set() for c in canaries}

    engine = db.make_engine(embedded_settings.db)  # the app's database, read beside it

    def scan(needle: str) -> dict[str, list[str]]:
        # Chroma holds vectors, not text: it is checked by the ids of the memories that
        # held the canary (collected while they exist).
        vectors_of[needle] |= canary.memory_ids_with(engine, needle)
        found = {"files": canary.files_with(data_dir, needle)}
        if vectors_of[needle]:  # the edit's canary is in no memory
            found["chroma"] = canary.chroma_entries(chroma, vectors_of[needle])
        return found

    async for api in open_api(embedded_settings, ScriptedBackend(script=REPLY)):
        left = await _flow_and_delete(api, canaries, scan)
    engine.dispose()
    # And once every process has closed its files (nothing left to flush).
    for needle in canaries:
        left[f"{needle}, closed"] = {
            "files": canary.files_with(data_dir, needle),
            "chroma": canary.chroma_entries(chroma, vectors_of[needle]),
        }
        left[f"{needle}, FTS terms"] = [
            *canary.fts_terms_with(data_dir / "attune.db", "memory_fts", needle),
            *canary.fts_terms_with(chroma, "embedding_fulltext_search", needle),
        ]
    assert left == _nothing(left), left
    assert log_file.read_text(encoding="utf-8"), "the log was written (and scanned)"  # noqa: ASYNC240


@pytest.fixture
def scaled_settings(
    settings: Settings, tiny: Path, postgres_db: str, chroma_url: str, redis_url: str
) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    scaled = Settings(
        data_dir=settings.data_dir,
        admin_key=settings.admin_key,
        db={"url": postgres_db.replace("postgresql://", "postgresql+psycopg://")},
        model={"cache_dir": settings.model.cache_dir},
        memory={"vector_url": chroma_url},
        worker={
            "broker_url": redis_url,
            "queue_prefix": prefix,
            "redis_key_prefix": prefix,
            # Scale-out as deployed: standalone workers, one per queue, in their own
            # processes (the embedded worker's two consumer threads on Redis are not the
            # topology this configuration stands for).
            "embedded": False,
            "poll_interval_s": 0.05,
        },
    )
    return for_tiny_model(scaled, tiny)


@pytest.fixture
def standalone_workers(scaled_settings: Settings) -> Iterator[None]:
    """``attune worker`` for the light and the heavy queue, logging under the data dir."""
    env = worker_env(scaled_settings)
    t = scaled_settings.training
    env.update(
        ATTUNE_MODEL__BASE_MODEL_DIR=str(scaled_settings.model.base_model_dir),
        ATTUNE_TRAINING__DEVICE=t.device,
        ATTUNE_TRAINING__MIN_SFT_EXAMPLES=str(t.min_sft_examples),
        ATTUNE_TRAINING__MIN_DPO_PAIRS=str(t.min_dpo_pairs),
        ATTUNE_TRAINING__SFT_MARGIN=str(t.sft_margin),
        ATTUNE_TRAINING__GENERAL_MAX_RISE=str(t.general_max_rise),
    )
    logs = scaled_settings.data_dir / "logs"  # scanned with every other file
    logs.mkdir(parents=True, exist_ok=True)
    procs = [
        spawn(["worker", "--queue", queue, "--pool", "threads"], env, logs / f"{queue}.log")
        for queue in ("light", "heavy")
    ]
    try:
        yield
    finally:
        for proc in procs:
            stop(proc)


async def test_no_table_collection_or_key_holds_a_deleted_canary(
    standalone_workers: None,
    scaled_settings: Settings,
    postgres_db: str,
    chroma_url: str,
    redis_url: str,
    log_file: Path,
) -> None:
    canaries = _canaries()
    vectors_of: dict[str, set[str]] = {c: set() for c in canaries}
    engine = db.make_engine(scaled_settings.db)

    def scan(needle: str) -> dict[str, list[str]]:
        vectors_of[needle] |= canary.memory_ids_with(engine, needle)
        found = {
            "tables": canary.postgres_rows_with(postgres_db, needle),
            "files": canary.files_with(scaled_settings.data_dir, needle),
        }
        if vectors_of[needle]:  # the edit's canary is in no memory
            found["vectors"] = canary.chroma_server_entries(chroma_url, vectors_of[needle])
        return found

    async for api in open_api(scaled_settings, ScriptedBackend(script=REPLY)):
        left = await _flow_and_delete(api, canaries, scan)
        for needle in canaries:
            left[f"{needle}, servers"] = {
                "collections": canary.chroma_items_with(chroma_url, needle),
                "redis": canary.redis_keys_with(redis_url, needle),
            }
    engine.dispose()
    assert left == _nothing(left), left
