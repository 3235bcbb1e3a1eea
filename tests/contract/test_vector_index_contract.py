"""The VectorIndex contract, on embedded Chroma and on a real Chroma server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memory.retrieval.protocols import IndexEntry, VectorIndex
from memory.retrieval.vectors import (
    ChromaVectorIndex,
    VectorSettings,
    collection_name,
    make_vector_index,
)

DIM = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``chroma run`` subprocess on a free port; yields its ``http://`` URL."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log_path = root / "chroma.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log:
        args = ["run", "--path", str(root / "db"), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [str(chroma), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma did not answer within 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["embedded", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorIndex:
    if request.param == "embedded":
        return make_vector_index(VectorSettings(path=tmp_path / "chroma"))
    url = request.getfixturevalue("chroma_server")
    return make_vector_index(VectorSettings(url=url))


def _user() -> str:
    # The server lives for the whole session: fresh users keep the tests independent.
    return f"usr_{uuid.uuid4().hex}"


def _vec(*hot: float) -> list[float]:
    """A DIM-dimensional vector with the leading components given, zeros after."""
    return [*hot, *([0.0] * (DIM - len(hot)))]


def _entry(memory_id: str, kind: str = "fact", created_at: float = 1.0) -> IndexEntry:
    return IndexEntry(
        memory_id=memory_id, text=f"text of {memory_id}", kind=kind, created_at=created_at
    )


def _ids(
    index: VectorIndex,
    user: str,
    vector: list[float],
    *,
    k: int = 10,
    kinds: list[str] | None = None,
) -> list[str]:
    return [h.memory_id for h in index.query(user, vector, k=k, kinds=kinds)]


def test_implements_the_protocol(index: ChromaVectorIndex) -> None:
    assert isinstance(index, VectorIndex)


def test_query_returns_the_nearest_first(index: ChromaVectorIndex) -> None:
    user = _user()
    entries = [_entry("m_x"), _entry("m_y"), _entry("m_xy")]
    index.upsert(user, entries, [_vec(1, 0), _vec(0, 1), _vec(1, 1)])
    hits = index.query(user, _vec(1, 0.1), k=3)
    assert [h.memory_id for h in hits] == ["m_x", "m_xy", "m_y"]
    assert hits[0].score == pytest.approx(0.995, abs=1e-3)  # 1 - cosine distance
    assert hits[0].score > hits[1].score > hits[2].score
    assert [h.memory_id for h in index.query(user, _vec(0, 1), k=1)] == ["m_y"]


def test_users_are_isolated_even_with_identical_vectors(index: ChromaVectorIndex) -> None:
    alice, bob = _user(), _user()
    index.upsert(alice, [_entry("m_a")], [_vec(1, 0)])
    index.upsert(bob, [_entry("m_b"), _entry("m_a")], [_vec(1, 0), _vec(0, 1)])
    assert _ids(index, alice, _vec(1, 0)) == ["m_a"]
    assert _ids(index, bob, _vec(1, 0)) == ["m_b", "m_a"]
    # The same memory id under two users names two entries.
    index.delete(bob, ["m_a"])
    assert _ids(index, alice, _vec(1, 0)) == ["m_a"]
    assert (index.count(alice), index.count(bob)) == (1, 1)


def test_kinds_filter(index: ChromaVectorIndex) -> None:
    user = _user()
    entries = [_entry("m_f", "fact"), _entry("m_p", "preference"), _entry("m_e", "episodic")]
    index.upsert(user, entries, [_vec(1, 0), _vec(1, 0.1), _vec(1, 0.2)])
    assert _ids(index, user, _vec(1, 0), kinds=["preference", "episodic"]) == ["m_p", "m_e"]
    assert _ids(index, user, _vec(1, 0), kinds=["summary"]) == []
    assert _ids(index, user, _vec(1, 0), kinds=[]) == []


def test_delete_removes_only_the_named_entries(index: ChromaVectorIndex) -> None:
    user = _user()
    index.upsert(user, [_entry("m_1"), _entry("m_2")], [_vec(1, 0), _vec(0, 1)])
    index.delete(user, ["m_1", "m_unknown"])
    assert _ids(index, user, _vec(1, 0)) == ["m_2"]
    assert index.count(user) == 1
    index.delete(user, [])
    index.delete(_user(), ["m_2"])  # a user with no collection
    assert index.count(user) == 1


def test_delete_user_removes_everything_and_only_that_user(index: ChromaVectorIndex) -> None:
    alice, bob = _user(), _user()
    index.upsert(alice, [_entry("m_1"), _entry("m_2")], [_vec(1, 0), _vec(0, 1)])
    index.upsert(bob, [_entry("m_3")], [_vec(1, 0)])
    index.delete_user(alice)
    assert index.count(alice) == 0
    assert index.query(alice, _vec(1, 0), k=5) == []
    assert _ids(index, bob, _vec(1, 0)) == ["m_3"]
    index.delete_user(alice)  # idempotent
    index.upsert(alice, [_entry("m_4")], [_vec(0, 1)])  # and the user can start again
    assert _ids(index, alice, _vec(1, 0)) == ["m_4"]


def test_count(index: ChromaVectorIndex) -> None:
    user = _user()
    assert index.count(user) == 0
    index.upsert(user, [_entry(f"m_{i}") for i in range(5)], [_vec(1, i) for i in range(5)])
    assert index.count(user) == 5


def test_upsert_replaces(index: ChromaVectorIndex) -> None:
    user = _user()
    index.upsert(user, [_entry("m_1", "fact"), _entry("m_2")], [_vec(1, 0), _vec(1, 1)])
    index.upsert(user, [_entry("m_1", "preference", 2.0)], [_vec(0, 1)])
    assert index.count(user) == 2
    assert _ids(index, user, _vec(1, 0)) == ["m_2", "m_1"]
    assert _ids(index, user, _vec(0, 1), kinds=["preference"]) == ["m_1"]
    assert _ids(index, user, _vec(0, 1), kinds=["fact"]) == ["m_2"]
    # Within one call, the last entry for an id wins.
    index.upsert(user, [_entry("m_3"), _entry("m_3", "episodic")], [_vec(1, 0), _vec(0, 1)])
    assert _ids(index, user, _vec(0, 1), kinds=["episodic"]) == ["m_3"]
    assert index.count(user) == 3


def test_k_larger_than_the_collection(index: ChromaVectorIndex) -> None:
    user = _user()
    index.upsert(user, [_entry("m_1"), _entry("m_2")], [_vec(1, 0), _vec(0, 1)])
    assert len(index.query(user, _vec(1, 0), k=100)) == 2
    assert len(index.query(user, _vec(1, 0), k=100, kinds=["fact"])) == 2
    assert index.query(user, _vec(1, 0), k=0) == []


def test_unknown_user_gives_nothing(index: ChromaVectorIndex) -> None:
    user = _user()
    assert index.query(user, _vec(1, 0), k=5) == []
    assert index.count(user) == 0
    index.delete_user(user)


def test_mismatched_lengths_are_refused(index: ChromaVectorIndex) -> None:
    with pytest.raises(ValueError):
        index.upsert(_user(), [_entry("m_1")], [])


def test_collection_names_follow_chroma_rules() -> None:
    plain = collection_name(f"usr_{'a' * 32}")
    assert plain == f"attune-u-usr_{'a' * 32}"
    odd = ["ü", "a b", "x" * 200, "a..b", "-lead", "trail_", "1.2.3.4"]
    names = {collection_name(u) for u in odd} | {plain}
    assert len(names) == len(odd) + 1  # injective on these
    for name in names:
        assert 3 <= len(name) <= 63
        assert name[0].isalnum() and name[-1].isalnum()
        assert ".." not in name


def test_key_vectors_are_searched_apart_and_deleted_with_their_entry(
    index: ChromaVectorIndex,
) -> None:
    user = _user()
    index.upsert(user, [_entry("m_1"), _entry("m_2")], [_vec(1, 0), _vec(0, 1)])
    index.upsert_keys(user, [_entry("m_1")], [_vec(0, 1)])
    assert [h.memory_id for h in index.query_keys(user, _vec(0, 1), k=5)] == ["m_1"]
    assert _ids(index, user, _vec(0, 1))[0] == "m_2"  # the texts' vectors are apart
    assert index.count(user) == 2  # key vectors are not entries
    index.delete(user, ["m_1"])
    assert index.query_keys(user, _vec(0, 1), k=5) == []
    index.upsert_keys(user, [_entry("m_2")], [_vec(1, 0)])
    index.delete_user(user)
    assert index.query_keys(user, _vec(1, 0), k=5) == []
    assert collection_name(user, keys=True) != collection_name(user)
