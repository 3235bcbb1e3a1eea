"""OpenAI request fields that change the reply are honoured or refused by name, never
dropped: ``tools``, ``response_format``, log probabilities, logit bias, penalties."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.fakes import ScriptedBackend
from tests.unit.test_api_errors import CHAT, _chat, assert_error

JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": {"type": "object", "properties": {}}},
}


async def _post(api: Api, **fields: Any) -> Any:
    _, key = api.new_user()
    return await api.client.post(CHAT, json=_chat(**fields), headers=api.auth(key))


async def test_fields_that_change_nothing_are_accepted(api: Api) -> None:
    r = await _post(
        api,
        tools=[],
        tool_choice="none",
        response_format={"type": "text"},
        frequency_penalty=0,
        logprobs=False,
        metadata={"run": "7"},
        store=False,
        service_tier="auto",
        user="someone-else",
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", ["tools"]),
        ({"functions": [{"name": "f"}]}, "tools", ["tools"]),
        ({"tool_choice": "required"}, "tool_choice", ["tool_choice"]),
        ({"logprobs": True}, "logprobs", ["logprobs"]),
        ({"top_logprobs": 3}, "logprobs", ["logprobs"]),
        ({"logit_bias": {"50256": -100}}, "logit_bias", ["logit_bias"]),
        ({"frequency_penalty": 0.5}, "frequency_penalty", ["frequency_penalty"]),
        ({"presence_penalty": -1}, "presence_penalty", ["presence_penalty"]),
        ({"response_format": {"type": "json_object"}}, "response_format", ["json_object", "vllm"]),
        ({"response_format": JSON_SCHEMA}, "response_format", ["json_schema", "vllm"]),
    ],
)
async def test_a_field_the_backend_cannot_honour_is_refused_by_name(
    api: Api, backend: ScriptedBackend, fields: dict[str, Any], param: str, words: list[str]
) -> None:
    r = await _post(api, **fields)
    assert_error(r, 400, *words, param=param)
    assert backend.calls == []  # nothing was generated


@pytest.mark.parametrize(
    "response_format",
    [{}, {"type": "xml"}, {"type": "json_schema"}, {"type": "json_object", "json_schema": {}}],
)
async def test_a_malformed_response_format_is_a_clear_400(
    api: Api, response_format: dict[str, Any]
) -> None:
    r = await _post(api, response_format=response_format)
    assert_error(r, 400, "response_format")


async def test_a_backend_with_guided_decoding_gets_the_response_format(
    api: Api, backend: ScriptedBackend
) -> None:
    backend.output_formats = frozenset({"text", "json_object", "json_schema"})
    for fmt in ({"type": "json_object"}, JSON_SCHEMA, {"type": "text"}):
        r = await _post(api, response_format=fmt)
        assert r.status_code == 200, r.text
    assert backend.response_formats == [{"type": "json_object"}, JSON_SCHEMA, None]
