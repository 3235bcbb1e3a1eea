"""The real server (``attune serve``) with the real local model, driven by the openai client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlmodel import Session, create_engine, select

from memory.records.tables import Turn
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.model
ADMIN = "att_server_test_admin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(
    data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None
) -> Server:
    port = port or _free_port()
    env = {
        **os.environ,
        **(extra_env or {}),
        "ATTUNE_DATA_DIR": str(data_dir),
        "ATTUNE_MODEL__CACHE_DIR": str(MODEL_CACHE),
        "ATTUNE_ADMIN_KEY": ADMIN,
        "ATTUNE_MODEL__TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, proc, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("server") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def user_key(server: Server) -> str:
    r = httpx.post(
        server.url + "/v1/users",
        json={"name": "openai-client"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"])


def _turns(data_dir: Path) -> list[Turn]:
    engine = create_engine(f"sqlite:///{data_dir / 'attune.db'}")
    with Session(engine) as s:
        rows = list(s.exec(select(Turn)).all())
    engine.dispose()
    return rows


def test_openai_client_plain_chat(server: Server, user_key: str) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key=user_key)
    reply = client.chat.completions.create(
        model="attune",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
    )
    # Whatever the model writes: an EOS first would leave the text empty, yet it counts.
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 12
    meta = (reply.model_extra or {})["attune"]
    assert meta["target"] == "base" and meta["turn_id"] in {t.id for t in _turns(server.data_dir)}
    models = client.models.list()
    assert {m.id for m in models.data} == {"attune", "attune-base"}


def test_openai_client_streamed_chat_continues_a_thread(server: Server, user_key: str) -> None:
    client = OpenAI(base_url=server.url + "/v1", api_key=user_key)
    first = client.chat.completions.create(
        model="attune",
        messages=[{"role": "user", "content": "My favourite colour is teal."}],
        max_tokens=8,
        temperature=0,
    )
    thread = (first.model_extra or {})["attune"]["thread_id"]
    pieces, meta = [], None
    for chunk in client.chat.completions.create(
        model="attune",
        messages=[{"role": "user", "content": "What is my favourite colour?"}],
        max_tokens=16,
        temperature=0,
        stream=True,
        extra_body={"thread_id": thread},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        meta = (chunk.model_extra or {}).get("attune") or meta
    assert meta is not None and meta["thread_id"] == thread
    recorded = {t.id: t for t in _turns(server.data_dir)}
    assert recorded[meta["turn_id"]].content == "".join(pieces)


def test_openai_client_errors_are_4xx(server: Server, user_key: str) -> None:
    import openai

    client = OpenAI(base_url=server.url + "/v1", api_key=user_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server.url + "/v1", api_key="att_wrong", max_retries=0).models.list()


def test_disconnect_mid_stream_still_records_the_turn(server: Server, user_key: str) -> None:
    before = {t.id for t in _turns(server.data_dir)}
    body = {
        "model": "attune",
        "stream": True,
        "max_tokens": 48,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Count from one to twenty in words."}],
    }
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {user_key}"},
        timeout=60,
    ) as r:
        for line in r.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # got a token: hang up
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [t for t in _turns(server.data_dir) if t.id not in before]
        if any(t.role == "assistant" for t in new):
            break
        time.sleep(0.5)
    new = [t for t in _turns(server.data_dir) if t.id not in before]
    assert sorted(t.role for t in new) == ["assistant", "user"]
    assert (next(t for t in new if t.role == "assistant").completion_tokens or 0) >= 1


def test_thread_survives_a_server_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        key = httpx.post(
            srv.url + "/v1/users", json={"name": "r"}, headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()["api_key"]
        client = OpenAI(base_url=srv.url + "/v1", api_key=key)
        first = client.chat.completions.create(
            model="attune",
            messages=[{"role": "user", "content": "Please call me Captain."}],
            max_tokens=4,
            temperature=0,
        )
        thread = (first.model_extra or {})["attune"]["thread_id"]
    finally:
        srv.stop()
    srv = start_server(data)
    try:
        client = OpenAI(base_url=srv.url + "/v1", api_key=key)
        second = client.chat.completions.create(
            model="attune",
            messages=[{"role": "user", "content": "Who am I?"}],
            max_tokens=4,
            temperature=0,
            extra_body={"thread_id": thread},
        )
        assert (second.model_extra or {})["attune"]["thread_id"] == thread
        users = httpx.get(srv.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert users.status_code == 200
        preview = httpx.post(
            srv.url + f"/v1/users/{_user_id(data)}/prompt/preview",
            json={"messages": [{"role": "user", "content": "hi"}], "thread_id": thread},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert "Captain" in preview["system_prompt"]
        assert [m["content"] for m in preview["messages"][1:3]] == [
            "Please call me Captain.",
            first.choices[0].message.content,
        ]
    finally:
        srv.stop()


def _user_id(data_dir: Path) -> str:
    return _turns(data_dir)[0].user_id


def test_locomo_answers_and_verdicts_come_from_an_openai_compatible_endpoint(
    server: Server, user_key: str
) -> None:
    """``attune eval locomo --answer-url``'s path, with the served local model as both
    answerer and judge (a 135M model's verdicts mean nothing: only the plumbing is tested)."""
    from datetime import UTC, datetime

    from evals.suites.locomo.answers import judge_questions
    from evals.suites.locomo.data import LocomoQuestion
    from memory.extraction.llm import openai_chat
    from memory.views import MemoryView

    chat = openai_chat(
        base_url=server.url + "/v1", model="attune", api_key=user_key, timeout=120, max_retries=0
    ).model_copy(update={"max_tokens": 8})
    said = datetime(2023, 5, 8, tzinfo=UTC)
    memory = MemoryView(
        "mem_1", "episodic", "I went to the lake on Sunday.", "Caroline",
        [], said, said, None, None,
    )  # fmt: skip
    questions = [
        LocomoQuestion("c", "Where did Caroline go on Sunday?", ("D1:1",), "single-hop", "lake"),
        LocomoQuestion("c", "When did Caroline go to the lake?", ("D1:1",), "temporal", "May 7"),
    ]
    before = len(_turns(server.data_dir))
    report = judge_questions(
        questions, lambda q: [memory], answer_model=chat, judge_model=chat, names=("a", "j")
    )
    assert [j.question for j in report.judged] == questions
    assert all(isinstance(j.answer, str) for j in report.judged)
    figures = report.as_dict()
    assert figures["questions"] == 2 and 0.0 <= figures["accuracy"] <= 1.0
    turns = _turns(server.data_dir)
    assert len(turns) == before + 8  # each of the 4 calls is a recorded turn and its reply
    asked = " ".join(t.content for t in turns[before:])
    assert "Caroline" in asked and "Gold answer: lake" in asked


def test_openai_client_fields_the_local_backend_cannot_honour_are_refused(
    server: Server, user_key: str
) -> None:
    import openai

    client = OpenAI(base_url=server.url + "/v1", api_key=user_key)
    ask: Any = [{"role": "user", "content": "Pick a colour."}]
    with pytest.raises(openai.BadRequestError, match="response_format") as refused:
        client.chat.completions.create(
            model="attune", messages=ask, response_format={"type": "json_object"}
        )
    assert "vllm" in str(refused.value).lower()
    with pytest.raises(openai.BadRequestError, match="tools"):
        client.chat.completions.create(
            model="attune",
            messages=ask,
            tools=[{"type": "function", "function": {"name": "pick", "parameters": {}}}],
        )
