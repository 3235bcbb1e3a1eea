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

import pytest

from tests.conftest import Api, open_api
from tests.fakes import ScriptedBackend
from tests.integration import canary_support as canary
from tests.integration import training_support
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


def _canaries() -> tuple[str, str]:
    # Lower-case letters and digits: the FTS tokenizer keeps them as one unchanged term.
    return f"canaryturn{uuid.uuid4().hex[:12]}", f"canaryuser{uuid.uuid4().hex[:12]}"


Scan = Callable[[str], dict[str, list[str]]]


async def _flow_and_delete(api: Api, turn_canary: str, user_canary: str, scan: Scan) -> None:
    """Seed both canaries everywhere, then delete the turn (and its reply) and the user.

    ``scan`` finds where a canary is; before the deletions it must find it in every store
    kind it reports on (so the scans are shown to see copies at all).
    """
    a = await canary.seed(api, "turnowner", turn_canary, sample=False)
    b = await canary.seed(api, "userowner", user_canary, sample=True)
    for seeded in (a, b):
        await canary.train(api, seeded)
        canary.interrupted_run(api, seeded, run_id=f"interrupted-{seeded.user_id}")
    for seeded, needle in ((a, turn_canary), (b, user_canary)):
        r = await api.client.get(f"/v1/users/{seeded.user_id}/export", headers=api.auth(seeded.key))
        assert r.status_code == 200 and needle in r.text, "the export holds the canary"
    for needle in (turn_canary, user_canary):
        before = scan(needle)
        assert all(before.values()), before

    # The turn: the user's message, then the reply whose feedback holds the edit.
    for turn_id in (a.question_id, a.reply_id):
        await canary.delete(api, f"/v1/users/{a.user_id}/turns/{turn_id}", a.key)
    await canary.delete(api, f"/v1/users/{b.user_id}", b.key)
    assert not any(
        p.name.startswith("interrupted-") for p in api.services.settings.training.work_dir.iterdir()
    ), "the interrupted runs' work directories are gone"


@pytest.fixture
def embedded_settings(settings: Settings, tiny: Path) -> Settings:
    for_tiny_model(settings, tiny)
    settings.worker.embedded = True
    return settings


async def test_no_file_under_the_data_dir_holds_a_deleted_canary(
    embedded_settings: Settings, log_file: Path
) -> None:
    turn_canary, user_canary = _canaries()
    data_dir = embedded_settings.data_dir

    def scan(needle: str) -> dict[str, list[str]]:
        return {"files": canary.files_with(data_dir, needle)}

    async for api in open_api(embedded_settings, ScriptedBackend(script=REPLY)):
        await _flow_and_delete(api, turn_canary, user_canary, scan)
        live = {c: canary.files_with(data_dir, c) for c in (turn_canary, user_canary)}
    # And once every process has closed its files (nothing left to flush).
    closed = {c: canary.files_with(data_dir, c) for c in (turn_canary, user_canary)}
    assert live == {turn_canary: [], user_canary: []}, live
    assert closed == {turn_canary: [], user_canary: []}, closed
    for needle in (turn_canary, user_canary):
        assert canary.fts_terms_with(data_dir / "attune.db", "memory_fts", needle) == []
        chroma = data_dir / "vectors" / "chroma.sqlite3"
        assert canary.fts_terms_with(chroma, "embedding_fulltext_search", needle) == []
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
            "embedded": True,
            "poll_interval_s": 0.05,
        },
    )
    return for_tiny_model(scaled, tiny)


async def test_no_table_collection_or_key_holds_a_deleted_canary(
    scaled_settings: Settings,
    postgres_db: str,
    chroma_url: str,
    redis_url: str,
    log_file: Path,
) -> None:
    turn_canary, user_canary = _canaries()

    def scan(needle: str) -> dict[str, list[str]]:
        return {
            "tables": canary.postgres_rows_with(postgres_db, needle),
            "files": canary.files_with(scaled_settings.data_dir, needle),
        }

    async for api in open_api(scaled_settings, ScriptedBackend(script=REPLY)):
        await _flow_and_delete(api, turn_canary, user_canary, scan)
        found = {
            needle: {
                **scan(needle),
                "collections": canary.chroma_items_with(chroma_url, needle),
                "redis": canary.redis_keys_with(redis_url, needle),
            }
            for needle in (turn_canary, user_canary)
        }
    empty: dict[str, list[str]] = {"tables": [], "collections": [], "redis": [], "files": []}
    assert found == {turn_canary: empty, user_canary: empty}, found
