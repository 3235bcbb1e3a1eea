"""Integers, booleans and the schema: bad input is a 4xx naming the field, never a 500.

The overflowing integers below answered 500 (SQLite ``OverflowError``) before ``MAX_INT``
bounded them (and a 500 reset the client's keep-alive connection); "yes" was taken as true.
"""

from __future__ import annotations

import pytest

from api.protocol import MAX_INT
from tests.conftest import Api

HUGE = [str(2**63), "99999999999999999999", str(MAX_INT + 1)]


@pytest.mark.parametrize("huge", HUGE)
async def test_overflowing_query_and_path_integers_are_refused_with_the_field_named(
    api: Api, huge: str
) -> None:
    uid, key = api.new_user()
    auth = api.auth(key)
    base = f"/v1/users/{uid}"
    for path, field in (
        (f"{base}/memories?offset={huge}", "offset"),
        (f"{base}/preference-pairs?offset={huge}", "offset"),
        (f"{base}/profile/history?before_version={huge}", "before_version"),
        (f"{base}/profile/versions/{huge}", "version"),
    ):
        r = await api.client.get(path, headers=auth)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert field in r.text, r.text
    r = await api.client.post(f"{base}/profile/restore", json={"version": int(huge)}, headers=auth)
    assert 400 <= r.status_code < 500 and "version" in r.text, r.text
    chat = {"model": "attune", "messages": [{"role": "user", "content": "hi"}]}
    for field in ("max_tokens", "max_completion_tokens"):
        r = await api.client.post(
            "/v1/chat/completions", json={**chat, field: int(huge)}, headers=auth
        )
        assert 400 <= r.status_code < 500 and field in r.text, r.text
    # The largest allowed values are served (nothing there, but no error).
    r = await api.client.get(f"{base}/memories?offset={MAX_INT}", headers=auth)
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    r = await api.client.get(f"{base}/profile/history?before_version={MAX_INT}", headers=auth)
    assert r.status_code == 200, r.text


async def test_booleans_must_be_json_booleans(api: Api) -> None:
    uid, key = api.new_user()
    auth = api.auth(key)
    chat = {"model": "attune", "messages": [{"role": "user", "content": "hi"}]}
    for value in ("yes", "true", 1):
        r = await api.client.post(
            "/v1/chat/completions", json={**chat, "stream": value}, headers=auth
        )
        assert 400 <= r.status_code < 500 and "stream" in r.text, r.text
    r = await api.client.patch(
        f"/v1/users/{uid}/profile", json={"formatting": {"emoji": "no"}}, headers=auth
    )
    assert 400 <= r.status_code < 500 and "emoji" in r.text, r.text
    r = await api.client.post("/v1/chat/completions", json={**chat, "stream": False}, headers=auth)
    assert r.status_code == 200, r.text


async def test_the_schema_declares_every_error_and_is_public_like_the_docs(api: Api) -> None:
    r = await api.client.get("/openapi.json")  # no key: the reference is public
    assert r.status_code == 200
    spec = r.json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "415", "422"} <= set(chat)
    assert chat["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert (await api.client.get("/docs")).status_code == 200
    r = await api.client.get("/v1/models")  # but every data route needs a key
    assert r.status_code == 401
