"""Random, mostly chat-shaped bodies never get a 5xx (nor crash the app)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, MODEL_CACHE, Api, open_api
from tests.fakes import ScriptedBackend
from wiring.settings import Settings

# Text with what JSON allows and stores choke on: NUL, lone surrogates, astral characters.
chars = st.characters(codec=None, exclude_categories=()) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\u2028", "😀", "é", " "]
)
big_ints = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30])


# Built from lists: st.text() quietly drops surrogates even from an explicit alphabet.
def strings(min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[str]:
    return st.lists(chars, min_size=min_size, max_size=max_size).map("".join)


texts = strings() | st.sampled_from(
    ["", " ", "hello", "\x00", "\ud800", "call me Ace", "thr_x", "😀", "x" * 1001]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | big_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function", ""])
contents = (
    texts
    | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=3)
    | st.lists(st.fixed_dictionaries({"type": texts | json_values}), max_size=2)
    | json_values
)
messages = st.fixed_dictionaries(
    {},
    optional={"role": roles | json_values, "content": contents, "name": texts | json_values},
)
FIELDS = {
    "model": st.sampled_from(["attune", "attune-base", "gpt-4", ""]) | json_values,
    "n": st.integers(-2, 3) | json_values,
    "temperature": st.floats(-1, 3) | json_values,
    "top_p": st.floats(-1, 2) | json_values,
    "max_tokens": st.integers(-5, 2**40) | json_values,
    "max_completion_tokens": st.integers(-5, 10_000) | json_values,
    "stop": st.lists(texts, max_size=6) | json_values,
    "seed": st.integers(-(2**70), 2**70) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}) | json_values,
    "thread_id": texts | json_values,
    "user": texts | json_values,
}
chat_bodies = st.fixed_dictionaries(
    {}, optional={"messages": st.lists(messages, max_size=4) | json_values, **FIELDS}
)
# Near-valid: good history and a user message last, with odd but often legal parameters,
# so that many examples get past validation and run the graph.
words = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
good_messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": words}
)
near_valid = st.builds(
    lambda prior, last, extra: {"messages": [*prior, {"role": "user", "content": last}], **extra},
    st.lists(good_messages, max_size=3),
    words | strings(min_size=1, max_size=20),
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(["attune", "attune-base"]),
            "temperature": st.floats(0, 2),
            "max_tokens": st.integers(1, 600) | big_ints,
            "stop": st.lists(words, max_size=4),
            "seed": st.integers(-(2**64), 2**64) | big_ints,
            "stream": st.booleans(),
            "user": texts,
        },
    ),
)
# near_valid twice: one_of draws its branches evenly, and those are the deep examples.
bodies = st.one_of(near_valid, near_valid, chat_bodies, json_values)


def encode(body: Any) -> bytes:
    # ASCII escapes carry lone surrogates; NaN and Infinity are what Python's json emits.
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


@pytest.fixture(scope="module")
async def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        admin_key=ADMIN_KEY,
        model={"cache_dir": MODEL_CACHE},
        server={"max_body_bytes": 8192, "max_message_chars": 1000, "max_messages": 8},
    )
    async for api in open_api(settings, ScriptedBackend()):
        yield api


@pytest.fixture(scope="module")
def fuzz_user(fuzz_api: Api) -> tuple[str, str]:
    return fuzz_api.new_user("fuzz")


def check(r: Any) -> None:
    event(f"status {r.status_code}")  # shown by --hypothesis-show-statistics
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    elif r.headers.get("content-type", "").startswith("text/event-stream"):
        read_stream(r.text)


def read_stream(text: str) -> None:
    """A 200 stream is read to its end: well-formed events, ``[DONE]`` last, and no error
    event (a server fault hidden behind the 200 the status check cannot see)."""
    # SSE lines end at CR or LF only: str.splitlines would also split at U+2028 in a reply.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    data = [line[6:] for line in lines if line.startswith("data: ")]
    assert data and data[-1] == "[DONE]", text[-500:]
    chunks = [json.loads(d) for d in data[:-1]]
    errors = [c["error"] for c in chunks if "error" in c]
    event(f"stream with {len(errors)} error events")
    assert not errors, errors
    assert chunks[-1].get("attune") or chunks[-1].get("usage"), chunks[-1]


_fuzz = hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_fuzz
@given(body=bodies)
async def test_chat_never_5xx(fuzz_api: Api, fuzz_user: tuple[str, str], body: Any) -> None:
    _, key = fuzz_user
    headers = {"content-type": "application/json", **fuzz_api.auth(key)}
    r = await fuzz_api.client.post("/v1/chat/completions", content=encode(body), headers=headers)
    check(r)


@_fuzz
@given(body=bodies, admin=st.booleans())
async def test_preview_never_5xx(
    fuzz_api: Api, fuzz_user: tuple[str, str], body: Any, admin: bool
) -> None:
    uid, key = fuzz_user
    headers = {"content-type": "application/json", **fuzz_api.auth(ADMIN_KEY if admin else key)}
    r = await fuzz_api.client.post(
        f"/v1/users/{uid}/prompt/preview", content=encode(body), headers=headers
    )
    check(r)


@_fuzz
@given(body=st.binary(max_size=200) | st.builds(encode, json_values).map(lambda b: b[:-1]))
async def test_garbage_bytes_never_5xx(
    fuzz_api: Api, fuzz_user: tuple[str, str], body: bytes
) -> None:
    _, key = fuzz_user
    headers = {"content-type": "application/json", **fuzz_api.auth(key)}
    check(await fuzz_api.client.post("/v1/chat/completions", content=body, headers=headers))


arm_settings = st.fixed_dictionaries(
    {},
    optional={
        "prompt_version": texts | st.sampled_from(["v1", "v4"]),
        "prompt_versions": st.dictionaries(texts, texts, max_size=2) | json_values,
        "adapters": st.sampled_from(["on", "off"]) | json_values,
        "adapter": texts,
        "model": st.sampled_from(["attune", "attune-base"]) | json_values,
        "recall_k": st.integers(-1, 60) | big_ints,
        "max_tokens": st.integers(-5, 2**40) | json_values,
        "temperature": st.floats(allow_nan=True) | json_values,
    },
)
arms = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["control", "b", "c"]) | texts,
        "weight": st.floats(-1, 10) | json_values,
    },
    optional={"settings": arm_settings | json_values},
)
# Near-valid: a fresh name, a plain control and one arm with odd settings, so that many
# examples are created, shown and stopped.
near_valid_experiments = st.builds(
    lambda name, settings, extra: {
        "name": name,
        "control": "control",
        "arms": [
            {"name": "control", "weight": 1},
            {"name": "b", "weight": 1, "settings": settings},
        ],
        **extra,
    },
    st.uuids().map(lambda u: f"fz-{u.hex[:12]}"),
    st.fixed_dictionaries(
        {},
        optional={
            "prompt_version": st.sampled_from(["v1", "v4", "v9"]),
            "adapters": st.sampled_from(["on", "off"]),
            "recall_k": st.integers(0, 50),
            "max_tokens": st.integers(1, 600),
            "temperature": st.floats(0, 2),
        },
    ),
    st.fixed_dictionaries({}, optional={"ends_at": st.sampled_from(["2030-01-01T00:00:00"])}),
)
experiment_bodies = st.one_of(
    near_valid_experiments,
    near_valid_experiments,
    st.fixed_dictionaries(
        {"name": texts, "control": st.just("control") | texts, "arms": st.lists(arms, max_size=4)},
        optional={
            "eligibility": st.fixed_dictionaries(
                {}, optional={"users": st.lists(texts, max_size=3), "group": texts}
            )
            | json_values,
            "starts_at": texts | json_values,
            "ends_at": st.sampled_from(["2030-01-01T00:00:00Z", "yesterday"]) | json_values,
        },
    ),
    json_values,
)


@_fuzz
@given(body=experiment_bodies, stop=json_values)
async def test_experiment_routes_never_5xx(fuzz_api: Api, body: Any, stop: Any) -> None:
    headers = {"content-type": "application/json", **fuzz_api.auth(ADMIN_KEY)}
    r = await fuzz_api.client.post("/v1/experiments", content=encode(body), headers=headers)
    check(r)
    if r.status_code == 201:  # stop it, with an odd body, so the next one may start
        exp_id = r.json()["id"]
        check(await fuzz_api.client.get(f"/v1/experiments/{exp_id}", headers=headers))
        url = f"/v1/experiments/{exp_id}/stop"
        check(await fuzz_api.client.post(url, content=encode({"reason": stop}), headers=headers))
        await fuzz_api.client.post(url, headers=headers)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=near_valid.map(lambda b: {**b, "stream": True}))
async def test_streams_are_read_to_their_end_without_error_events(
    fuzz_api: Api, fuzz_user: tuple[str, str], body: Any
) -> None:
    _, key = fuzz_user
    headers = {"content-type": "application/json", **fuzz_api.auth(key)}
    check(await fuzz_api.client.post("/v1/chat/completions", content=encode(body), headers=headers))
