"""A user's message is on disk from the moment its request is accepted; a reply that never
finished leaves it marked ``interrupted``, never lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import col, select

from adapters.errors import BackendUnavailableError
from memory.records import repo
from memory.records.tables import Thread, Turn, utcnow
from tests.conftest import Api, open_api
from wiring.settings import Settings

CHAT = "/v1/chat/completions"


def _body(text: str) -> dict[str, object]:
    return {"model": "attune", "messages": [{"role": "user", "content": text}]}


def _turns(api: Api) -> list[Turn]:
    with api.services.store.session() as s:
        return list(s.exec(select(Turn).order_by(col(Turn.created_at))).all())


async def test_the_message_is_stored_before_the_reply_and_marked_when_it_fails(
    api: Api, backend
) -> None:
    _, key = api.new_user()
    original = backend.chat_model

    def broken(**kw: object) -> object:
        raise BackendUnavailableError("the model server fell over", retry_after_s=1)

    backend.chat_model = broken
    r = await api.client.post(
        CHAT, json=_body("please remember my parcel number"), headers=api.auth(key)
    )
    assert r.status_code == 503
    (turn,) = _turns(api)
    assert (turn.role, turn.content, turn.status) == (
        "user",
        "please remember my parcel number",
        "interrupted",
    )
    with api.services.store.session() as s:
        assert s.get(Thread, turn.thread_id) is not None  # the thread exists for it
    backend.chat_model = original
    r = await api.client.post(CHAT, json=_body("hello again"), headers=api.auth(key))
    assert r.status_code == 200
    statuses = [(t.role, t.status) for t in _turns(api)]
    assert statuses == [("user", "interrupted"), ("user", None), ("assistant", None)]


async def test_mid_reply_the_message_is_on_disk_and_a_crash_is_marked_at_the_next_start(
    settings: Settings, backend
) -> None:
    backend.gate = asyncio.Event()  # the reply stalls after its first token
    async for api in open_api(settings, backend):
        uid, key = api.new_user()
        reply = asyncio.create_task(
            api.client.post(
                CHAT, json=_body("a message the crash must not lose"), headers=api.auth(key)
            )
        )
        await asyncio.sleep(0.5)  # generating, paused after its first token
        assert api.services.runner._by_user.get(uid)
        (turn,) = _turns(api)  # on disk already, not yet answered
        assert (turn.content, turn.status) == ("a message the crash must not lose", None)
        backend.gate.set()
        assert (await reply).status_code == 200
        # What a crash mid-reply leaves: an accepted message that was never answered.
        with api.services.store.session() as s:
            repo.accept_message(
                s,
                thread_id=turn.thread_id,
                user_id=uid,
                user_turn=Turn(
                    id="turn_crashed",
                    user_id=uid,
                    thread_id=turn.thread_id,
                    role="user",
                    content="cut off by a crash",
                    created_at=utcnow() - timedelta(minutes=30),
                ),
            )
            s.commit()
    async for api in open_api(settings, backend):  # the next start sweeps it
        by_id = {t.id: t for t in _turns(api)}
        assert by_id["turn_crashed"].status == "interrupted"
        assert by_id[turn.id].status is None  # answered before the "crash"
