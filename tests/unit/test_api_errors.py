"""Bad input gets a 4xx with an OpenAI error envelope and a sentence naming the problem.

Nothing a client sends may produce a 5xx, and nothing refused may be recorded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import select

from memory.records import repo
from memory.records.tables import Thread, Turn
from tests.conftest import ADMIN_KEY, MODEL_CACHE, Api, open_api
from tests.fakes import ScriptedBackend
from wiring.settings import Settings

CHAT = "/v1/chat/completions"
MAX_BODY = 16_384
MAX_CHARS = 2_000
MAX_MESSAGES = 20

Post = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One app for the module (starting one per test would double the time).

    Small limits keep the oversized requests small. Tests compare what is recorded
    before and after, since other tests in the module record turns too.
    """
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api_errors") / "data",
        admin_key=ADMIN_KEY,
        model={"cache_dir": MODEL_CACHE},
        server={
            "max_body_bytes": MAX_BODY,
            "max_message_chars": MAX_CHARS,
            "max_messages": MAX_MESSAGES,
        },
    )
    async for a in open_api(settings, ScriptedBackend()):
        yield a


def _user(content: Any = "hello") -> dict[str, Any]:
    return {"role": "user", "content": content}


def _chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "attune", "messages": list(messages) or [_user()], **extra}


def assert_error(
    r: httpx.Response, status: int, *words: str, param: str | None = None, kind: str | None = None
) -> str:
    """The status, the exact envelope, and a message that mentions each of ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    message = error["message"]
    assert isinstance(message, str) and len(message) > 15, message
    assert "Field required" not in message and "Value error" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    if param is not None:
        assert error["param"] == param, error
    if kind is not None:
        assert error["type"] == kind, error
    return message


def recorded(api: Api) -> tuple[int, int]:
    """How many turns and threads are stored."""
    with api.services.store.session() as s:
        return len(s.exec(select(Turn)).all()), len(s.exec(select(Thread)).all())


async def raw(api: Api, url: str, content: bytes, key: str, **headers: str) -> httpx.Response:
    return await api.client.post(
        url,
        content=content,
        headers={"content-type": "application/json", **api.auth(key), **headers},
    )


@pytest.fixture
async def nothing_recorded(api: Api) -> AsyncIterator[None]:
    """Fail the test if it recorded a turn or a thread, or reached the model."""
    backend: ScriptedBackend = api.services.backend
    before, calls = recorded(api), len(backend.calls)
    yield
    assert recorded(api) == before, "a refused request recorded something"
    assert len(backend.calls) == calls, "a refused request reached the model"


@pytest.fixture(params=["chat", "preview"])
async def post(request: pytest.FixtureRequest, api: Api, nothing_recorded: None) -> Post:
    """POST a body (``json=`` or ``content=``) to chat or to the user's prompt preview.

    Both take ``messages`` and must refuse the same bad input the same way; nothing may
    be recorded or generated.
    """
    uid, key = api.new_user()
    url = CHAT if request.param == "chat" else f"/v1/users/{uid}/prompt/preview"

    async def send(*, json: Any = None, content: bytes | None = None) -> httpx.Response:
        if content is not None:
            return await raw(api, url, content, key)
        return await api.client.post(url, json=json, headers=api.auth(key))

    return send


# --- the body as a whole ----------------------------------------------------------------


async def test_malformed_json(post: Post) -> None:
    r = await post(content=b'{"messages": [{"role": "user", "content": "hi"}')
    assert_error(r, 400, "not valid JSON", "character")


@pytest.mark.parametrize(("body", "kind"), [([1, 2], "a list"), ("hello", "a string")])
async def test_body_not_an_object(post: Post, body: Any, kind: str) -> None:
    assert_error(await post(json=body), 400, "JSON object", kind)


async def test_no_body(post: Post) -> None:
    assert_error(await post(content=b""), 400, "JSON body")


async def test_unparseable_body_is_a_clear_400(post: Post) -> None:
    # Python's json refuses integers over 4300 digits with a ValueError, not a JSONDecodeError.
    r = await post(content=b'{"messages": [], "seed": ' + b"9" * 5000 + b"}")
    assert_error(r, 400, "could not be parsed", "JSON")


# --- messages ----------------------------------------------------------------------------


async def test_missing_messages(post: Post) -> None:
    assert_error(
        await post(json={"model": "attune"}), 400, "messages", "required", param="messages"
    )


async def test_empty_messages(post: Post) -> None:
    assert_error(await post(json={"messages": []}), 400, "messages", "at least 1", param="messages")


@pytest.mark.parametrize("role", ["tool", "function", "robot"])
async def test_unknown_role(post: Post, role: str) -> None:
    r = await post(json=_chat({"role": role, "content": "hi"}))
    assert_error(r, 400, "role", "'user'", f"got '{role}'", param="messages.0.role")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (5, ["string or a list of text parts", "a number"]),
        (None, ["string or a list of text parts", "null"]),
        ({"text": "hi"}, ["string or a list of text parts", "an object"]),
        ([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}], ["'image_url'"]),
        (["hi"], ["content[0]", "a string", "text parts"]),
        ([{"type": "text", "text": 7}], ["content[0].text", "string"]),
    ],
)
async def test_content_of_wrong_type(post: Post, content: Any, words: list[str]) -> None:
    r = await post(json=_chat(_user(content)))
    assert_error(r, 400, "messages.0.content", *words, param="messages.0.content")


@pytest.mark.parametrize(
    "messages",
    [
        [_user("hi"), {"role": "assistant", "content": "hello"}],
        [{"role": "system", "content": "be brief"}],
    ],
)
async def test_last_message_not_from_the_user(post: Post, messages: list[dict[str, Any]]) -> None:
    assert_error(await post(json=_chat(*messages)), 400, "last message", "'user'", param="messages")


@pytest.mark.parametrize("content", ["", "  \n\t ", [{"type": "text", "text": " "}], []])
async def test_last_message_empty(post: Post, content: Any) -> None:
    r = await post(
        json=_chat(_user("earlier"), {"role": "assistant", "content": "ok"}, _user(content))
    )
    assert_error(r, 400, "messages[2]", "empty", param="messages.2")


async def test_too_many_messages(post: Post) -> None:
    r = await post(json=_chat(*[_user(f"m{i}") for i in range(MAX_MESSAGES + 1)]))
    assert_error(r, 400, "too many messages", str(MAX_MESSAGES), "thread_id", param="messages")


@pytest.mark.parametrize("role", ["user", "system"])
async def test_message_over_the_character_limit(post: Post, role: str) -> None:
    r = await post(json=_chat({"role": role, "content": "x" * (MAX_CHARS + 1)}, _user("hi")))
    assert_error(
        r, 413, "messages[0]", str(MAX_CHARS + 1), str(MAX_CHARS), param="messages.0.content"
    )


@pytest.mark.parametrize(
    ("escaped", "words"),
    [("\\ud800", ["unpaired surrogate"]), ("a\\u0000b", ["NUL"])],
)
async def test_text_the_stores_cannot_hold(post: Post, escaped: str, words: list[str]) -> None:
    # A lone surrogate used to fail after generation, while recording the turn (500).
    body = '{"messages": [{"role": "user", "content": "' + escaped + '"}]}'
    assert_error(await post(content=body.encode()), 400, "messages.0.content", *words)


async def test_unknown_model(post: Post) -> None:
    r = await post(json=_chat(model="gpt-4"))
    assert_error(r, 404, "'gpt-4'", "attune", param="model", kind="not_found_error")


@pytest.mark.parametrize(
    ("thread_id", "status", "words"),
    [
        ("thr_00000000000000000000000000000000", 404, ["no thread", "thr_0000"]),
        ("no such thread!", 400, ["thread_id", "letters, digits"]),
        ("thr_" + "0" * 40, 400, ["thread_id"]),
        (17, 400, ["thread_id", "string", "got 17"]),
    ],
)
async def test_bad_or_unknown_thread_id(
    post: Post, thread_id: Any, status: int, words: list[str]
) -> None:
    r = await post(json=_chat(thread_id=thread_id))
    assert_error(r, status, *words, param="thread_id")


async def test_another_users_thread_is_not_found(api: Api) -> None:
    _, key_b = api.new_user("bob")
    r = await api.client.post(CHAT, json=_chat(_user("mine")), headers=api.auth(key_b))
    theirs = r.json()["attune"]["thread_id"]
    before = recorded(api)
    _, key_a = api.new_user("alice")
    r = await api.client.post(CHAT, json=_chat(thread_id=theirs), headers=api.auth(key_a))
    assert_error(r, 404, "no thread", theirs, param="thread_id", kind="not_found_error")
    assert recorded(api) == before


# --- sampling parameters (chat only) -----------------------------------------------------


@pytest.mark.usefixtures("nothing_recorded")
@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"n": 2}, "n", ["less than or equal to 1", "got 2"]),
        ({"temperature": 2.5}, "temperature", ["less than or equal to 2", "got 2.5"]),
        ({"temperature": -0.1}, "temperature", ["greater than or equal to 0", "got -0.1"]),
        ({"temperature": "hot"}, "temperature", ["number", "got 'hot'"]),
        ({"top_p": 0}, "top_p", ["greater than 0"]),
        ({"max_tokens": -5}, "max_tokens", ["greater than or equal to 1", "got -5"]),
        ({"max_tokens": 0}, "max_tokens", ["greater than or equal to 1"]),
        ({"max_completion_tokens": -1}, "max_completion_tokens", ["greater than or equal to 1"]),
        ({"max_tokens": 10**30}, "max_tokens", ["no room", "context"]),
        ({"max_completion_tokens": 9000}, "max_completion_tokens", ["no room", "8192"]),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", ["up to 4"]),
        ({"stop": ""}, "stop", ["non-empty"]),
        ({"stop": 3}, "stop", ["string or a list"]),
        ({"seed": 2**64}, "seed", ["less than or equal to"]),
        ({"stream_options": "yes"}, "stream_options", ["object"]),
    ],
)
async def test_bad_sampling_parameters(
    api: Api, extra: dict[str, Any], param: str, words: list[str]
) -> None:
    _, key = api.new_user()
    r = await api.client.post(CHAT, json=_chat(**extra), headers=api.auth(key))
    message = assert_error(r, 400, param, *words, param=param)
    assert message.startswith(("invalid request: ", param)), message


# --- size limits -------------------------------------------------------------------------


def _oversized() -> bytes:
    body = json.dumps(_chat(*[_user("x" * (MAX_CHARS - 10)) for _ in range(10)])).encode()
    assert len(body) > MAX_BODY
    return body


@pytest.mark.usefixtures("nothing_recorded")
async def test_body_over_the_limit_with_content_length(api: Api) -> None:
    _, key = api.new_user()
    r = await raw(api, CHAT, _oversized(), key)
    assert_error(r, 413, "too large", str(MAX_BODY))


async def _chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.usefixtures("nothing_recorded")
@pytest.mark.parametrize("authorized", [True, False])
async def test_body_over_the_limit_chunked_without_content_length(
    api: Api, authorized: bool
) -> None:
    # This was a 400 ("There was an error parsing the body"): the limit tripped inside
    # FastAPI's body reading, which turns any exception there into that 400.
    _, key = api.new_user()
    headers = {"content-type": "application/json", **(api.auth(key) if authorized else {})}
    request = api.client.build_request("POST", CHAT, content=_chunks(_oversized()), headers=headers)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_error(await api.client.send(request), 413, "too large", str(MAX_BODY))


async def test_chunked_body_under_the_limit_is_served(api: Api) -> None:
    _, key = api.new_user()
    body = json.dumps(_chat(_user("chunked " + "y" * 500))).encode()
    headers = {"content-type": "application/json", **api.auth(key)}
    r = await api.client.post(CHAT, content=_chunks(body, 100), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].startswith("echo: chunked yyy")


@pytest.mark.usefixtures("nothing_recorded")
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_non_json_content_type(api: Api, content_type: str) -> None:
    _, key = api.new_user()
    body = json.dumps(_chat()).encode()
    r = await raw(api, CHAT, body, key, **{"content-type": content_type})
    assert_error(r, 415, "Content-Type: application/json", content_type)


async def test_json_suffix_content_type_is_json(api: Api) -> None:
    _, key = api.new_user()
    r = await raw(
        api, CHAT, json.dumps(_chat()).encode(), key, **{"content-type": "application/vnd.x+json"}
    )
    assert r.status_code == 200, r.text


# --- keys --------------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_recorded")
@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, ["missing API key", "Authorization: Bearer <key>"]),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, ["'Basic' scheme", "Bearer <key>"]),
        ({"Authorization": "Bearer "}, ["no key after 'Bearer'"]),
        ({"Authorization": "Bearer att_not_a_key"}, ["invalid or revoked"]),
        ({"Authorization": "att_test_admin_key"}, ["names no scheme", "Bearer <key>"]),
    ],
)
async def test_missing_or_invalid_key(api: Api, headers: dict[str, str], words: list[str]) -> None:
    uid, _ = api.new_user()
    for method, url, body in [
        ("POST", CHAT, _chat()),
        ("POST", f"/v1/users/{uid}/prompt/preview", _chat()),
        ("POST", "/v1/users", {"name": "eve"}),
        ("DELETE", f"/v1/users/{uid}", None),
        ("GET", "/v1/models", None),
    ]:
        r = await api.client.request(method, url, json=body, headers=headers)
        assert_error(r, 401, *words, kind="authentication_error")


@pytest.mark.usefixtures("nothing_recorded")
async def test_admin_key_cannot_chat(api: Api) -> None:
    r = await api.client.post(CHAT, json=_chat(), headers=api.auth(ADMIN_KEY))
    assert_error(r, 403, "admin key", "user's key", kind="permission_error")


async def test_user_key_cannot_create_users(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.post("/v1/users", json={"name": "mallory"}, headers=api.auth(key))
    assert_error(r, 403, "admin key", kind="permission_error")


# --- POST /v1/users ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"name": ""}, 400, "name", ["at least 1 character"]),
        ({"name": "   "}, 400, "name", ["at least 1 character"]),
        ({}, 400, "name", ["required"]),
        ({"name": "x" * 201}, 400, "name", ["at most 200"]),
        ({"name": "eve", "is_admin": True}, 400, "is_admin", ["unknown field"]),
        ({"name": "eve", "id": "usr_mine"}, 400, "id", ["unknown field"]),
        (
            {"name": "eve", "group_id": "grp_missing"},
            404,
            "group_id",
            ["names no user group", "grp_missing"],
        ),
        ({"name": "eve", "group_id": "../etc"}, 400, "group_id", ["letters, digits"]),
        ({"name": 5}, 400, "name", ["string", "got 5"]),
    ],
)
async def test_create_user_bad_input(
    api: Api, body: dict[str, Any], status: int, param: str, words: list[str]
) -> None:
    users = _count_users(api)
    r = await api.client.post("/v1/users", json=body, headers=api.auth(ADMIN_KEY))
    assert_error(r, status, param, *words, param=param)
    assert _count_users(api) == users


def _count_users(api: Api) -> int:
    with api.services.store.session() as s:
        return repo.count_users(s)


async def test_create_user_strips_the_name(api: Api) -> None:
    r = await api.client.post("/v1/users", json={"name": "  Eve "}, headers=api.auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Eve"


# --- ids in paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id", ["usr_00000000000000000000000000000000", "not an id", "%00", "x" * 300]
)
async def test_unknown_user_id_in_path(api: Api, user_id: str) -> None:
    for method, url in [
        ("DELETE", f"/v1/users/{user_id}"),
        ("POST", f"/v1/users/{user_id}/prompt/preview"),
    ]:
        r = await api.client.request(method, url, json=_chat(), headers=api.auth(ADMIN_KEY))
        assert_error(r, 404, "no user", param="user_id", kind="not_found_error")


async def test_unknown_route_and_method(api: Api) -> None:
    _, key = api.new_user()
    assert_error(await api.client.get("/v1/nope", headers=api.auth(key)), 404, "no such route")
    assert_error(await api.client.get(CHAT, headers=api.auth(key)), 405, "method not allowed")
