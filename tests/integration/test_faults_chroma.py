"""Fault: the Chroma server down under a running service (issue 15).

Search goes on by the lexical index alone and says so (``SearchResults.degraded``), a turn
still gets its reply, memories written meanwhile get their vectors once Chroma is back,
and dense search comes back by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from memory.records import db, repo
from memory.retrieval.dense_health import DENSE, degraded
from memory.service import MemoryService, NewMemory
from tests.conftest import shared_embedder
from tests.integration.fault_support import ThrowawayChroma, throwaway_chroma, wait_for
from tests.integration.test_server import ADMIN, start_server
from wiring.services import build_memory
from wiring.settings import Settings

__all__ = ["throwaway_chroma"]  # a fixture used by name


@pytest.fixture
def memory(tmp_path: Path, throwaway_chroma: ThrowawayChroma) -> Iterator[MemoryService]:
    settings = Settings(
        data_dir=tmp_path / "data",
        memory={"vector_url": throwaway_chroma.url, "vector_retry_s": 0.5},
    )
    engine = db.open_engine(settings.db)
    try:
        yield build_memory(settings, engine, shared_embedder())
    finally:
        engine.dispose()


def _user(memory: MemoryService) -> str:
    with Session(memory.engine) as session:
        user, _ = repo.create_user(session, name="ana")
        session.commit()
        return user.id


def test_search_goes_lexical_while_chroma_is_down_and_dense_comes_back(
    memory: MemoryService, throwaway_chroma: ThrowawayChroma
) -> None:
    uid = _user(memory)
    memory.add(uid, [NewMemory(kind="fact", text="My tortoise Archibald is 80 years old.")])
    whole = memory.search(uid, "How old is Archibald the tortoise?")
    assert degraded(whole) == () and "dense" in whole[0].ranks

    throwaway_chroma.kill()
    down = memory.search(uid, "How old is Archibald the tortoise?")
    assert degraded(down) == (DENSE,)
    assert [v.text for v in down][:1] == ["My tortoise Archibald is 80 years old."]
    assert set(down[0].ranks) == {"lexical"}
    # A write while it is down keeps its rows and terms; its vectors are owed.
    memory.add(uid, [NewMemory(kind="fact", text="I kayak on the fjord every weekend.")])
    assert degraded(memory.search(uid, "fjord kayak")) == (DENSE,)
    assert memory.dense_health.failures >= 1 and memory.dense_health.skipped >= 2
    with pytest.raises(httpx.TransportError):  # the dense-only baseline does not pretend
        memory.search(uid, "fjord", mode="dense")

    throwaway_chroma.start()
    time.sleep(memory.settings.vector_retry_s)
    back = memory.search(uid, "Where do I go kayaking?")
    assert degraded(back) == () and any("dense" in v.ranks for v in back)
    # The owed vectors are written in the background once it answers again.
    wait_for(lambda: memory.dense_backlog(uid) == 0, 30, "the owed vectors")
    dense = memory.search(uid, "Where do I go kayaking?", mode="dense")
    assert "fjord" in dense[0].text


@pytest.mark.model
def test_chats_get_replies_while_chroma_is_down(
    tmp_path: Path, throwaway_chroma: ThrowawayChroma
) -> None:
    env = {
        "ATTUNE_MEMORY__VECTOR_URL": throwaway_chroma.url,
        "ATTUNE_MEMORY__VECTOR_RETRY_S": "0.5",
    }
    srv = start_server(tmp_path / "data", extra_env=env)
    try:
        made = httpx.post(
            srv.url + "/v1/users", json={"name": "c"}, headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()
        auth = {"Authorization": f"Bearer {made['api_key']}"}

        def chat(text: str, stream: bool = False) -> httpx.Response:
            body = {
                "model": "attune",
                "max_tokens": 2,
                "temperature": 0,
                "stream": stream,
                "messages": [{"role": "user", "content": text}],
            }
            return httpx.post(srv.url + "/v1/chat/completions", json=body, headers=auth, timeout=60)

        assert chat("My tortoise is called Archibald.").status_code == 200
        throwaway_chroma.kill()
        for stream in (False, True):
            r = chat("What is my tortoise called?", stream=stream)
            assert r.status_code == 200, r.text
            assert '"error"' not in r.text, r.text[-500:]
            assert '"degraded": ["dense"]' in r.text or '"degraded":["dense"]' in r.text  # says so
        found = httpx.get(
            srv.url + f"/v1/users/{made['id']}/memories/search",
            params={"q": "tortoise"},
            headers=auth,
        )
        assert found.status_code == 200 and found.json()["data"], found.text
        assert found.json()["degraded"] == ["dense"]

        throwaway_chroma.start()
        time.sleep(0.6)
        back = chat("Do you remember my tortoise?")
        assert back.status_code == 200 and back.json()["attune"]["degraded"] == []
    finally:
        srv.stop()
    log = srv.log.read_text()
    assert "vector index not answering" in log and "answering again" in log
    assert "is my tortoise called" not in log  # logs never hold message text
