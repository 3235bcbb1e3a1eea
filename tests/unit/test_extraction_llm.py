"""Semantic memory extraction with a chat model: parsing, structured output, the prompt, and
the fallback to the rule extractor."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field, SecretStr

from graph.prompts import PromptLibrary
from memory.extraction.extractor import (
    EXTRACTION_PROMPT,
    EXTRACTION_PROMPT_VERSION,
    Candidate,
    LLMExtractor,
    RuleExtractor,
    make_extractor,
)
from tests.fakes import ReplyModel

AT = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # a Sunday
rules = RuleExtractor()
PROMPT = PromptLibrary().source(EXTRACTION_PROMPT, EXTRACTION_PROMPT_VERSION)


class ToolCallModel(ReplyModel):
    """A chat model with tool support: structured output arrives as a tool call."""

    args: dict[str, Any] = Field(default_factory=dict)
    bound: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.append({"tools": list(tools), **kwargs})
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.calls.append(list(messages))
        call = {"name": "ExtractedMemories", "args": self.args, "id": "call_1", "type": "tool_call"}
        message = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=message)])


MEMORIES = {
    "memories": [
        {
            "kind": "fact",
            "text": "The user lives in Porto.",
            "slot": "Home_City ",
            "valid_from": "2026-11-15",
        },
        {"kind": "preference", "text": "The user prefers tea.", "slot": None, "valid_from": None},
        {
            "kind": "fact",
            "text": "The user lives in Porto",
            "slot": "home_city",
            "valid_from": None,
        },
    ]
}
EXPECTED = [
    Candidate(
        "fact", "The user lives in Porto.", "home_city", "user", datetime(2026, 11, 15, tzinfo=UTC)
    ),
    Candidate("preference", "The user prefers tea.", None, "user", None),
]


def test_llm_extractor_parses_a_json_reply_from_a_plain_chat_model() -> None:
    model = ReplyModel(reply=json.dumps(MEMORIES))
    got = LLMExtractor(model, prompt_template=PROMPT).extract(
        "I moved to Porto last week.", speaker="user", at=AT
    )
    assert got == EXPECTED  # slot normalized, duplicate text dropped, naive date gets the tz
    system, human = model.calls[0]
    assert "written by the user at 2026-11-22T15:30+00:00" in system.text
    assert human.text == "I moved to Porto last week (around 2026-11-15)."


def test_llm_extractor_accepts_fenced_json_and_assistant_turns() -> None:
    reply = "Here you go:\n```json\n" + json.dumps(MEMORIES) + "\n```"
    model = ReplyModel(reply=reply)
    got = LLMExtractor(model, prompt_template=PROMPT).extract(
        "Since you live in Porto ...", speaker="assistant", at=AT
    )
    assert [c.speaker for c in got] == ["assistant", "assistant"]
    assert "assistant's reply" in model.calls[0][0].text


def test_llm_extractor_uses_structured_output_when_the_model_has_it() -> None:
    model = ToolCallModel(args=MEMORIES)
    got = LLMExtractor(model, prompt_template=PROMPT).extract(
        "I moved to Porto last week.", speaker="user", at=AT
    )
    assert got == EXPECTED
    assert model.bound[0]["tools"][0].__name__ == "ExtractedMemories"


def test_llm_extractor_returns_an_empty_list_when_the_model_finds_nothing() -> None:
    model = ReplyModel(reply='{"memories": []}')
    assert (
        LLMExtractor(model, prompt_template=PROMPT).extract(
            "I live in Lisbon.", speaker="user", at=AT
        )
        == []
    )


@pytest.mark.parametrize(
    "reply",
    [
        "Sure! The user lives in Lisbon.",  # no JSON at all
        '{"memories": [{"kind": "opinion", "text": "x", "slot": null, "valid_from": null}]}',
        '{"memories": "none"}',
        '{"memories": [',
    ],
)
def test_llm_extractor_falls_back_to_rules_on_invalid_output(
    reply: str, caplog: pytest.LogCaptureFixture
) -> None:
    extractor = LLMExtractor(ReplyModel(reply=reply), prompt_template=PROMPT)
    with caplog.at_level(logging.WARNING, logger="memory.extraction.extractor"):
        got = extractor.extract("I live in Lisbon.", speaker="user", at=AT)
    assert got == rules.extract("I live in Lisbon.", speaker="user", at=AT)
    assert "using rules" in caplog.text


def test_llm_extractor_falls_back_when_the_model_fails(caplog: pytest.LogCaptureFixture) -> None:
    extractor = LLMExtractor(ReplyModel(error="endpoint down"), prompt_template=PROMPT)
    with caplog.at_level(logging.WARNING, logger="memory.extraction.extractor"):
        got = extractor.extract("I love sushi.", speaker="user", at=AT)
    assert [c.slot for c in got] == ["likes:sushi"]
    assert "RuntimeError" in caplog.text


async def test_llm_extractor_async_and_its_fallback() -> None:
    good = LLMExtractor(ReplyModel(reply=json.dumps(MEMORIES)), prompt_template=PROMPT)
    assert await good.aextract("I moved to Porto.", speaker="user", at=AT) == EXPECTED
    bad = LLMExtractor(ReplyModel(reply="garbage"), prompt_template=PROMPT)
    got = await bad.aextract("I love sushi.", speaker="user", at=AT)
    assert [c.slot for c in got] == ["likes:sushi"]


def test_llm_extractor_skips_empty_text_and_unknown_speakers() -> None:
    model = ReplyModel(reply=json.dumps(MEMORIES))
    extractor = LLMExtractor(model, prompt_template=PROMPT)
    assert extractor.extract("  ", speaker="user", at=AT) == []
    assert extractor.extract("I live in Porto.", speaker="system", at=AT) == []
    assert model.calls == []


def _openai_extractor(handler: Any) -> LLMExtractor:
    chat = ChatOpenAI(
        model="extractor-model",
        base_url="http://llm.test/v1",
        api_key=SecretStr("test"),
        max_retries=0,
        temperature=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    return LLMExtractor(chat, prompt_template=PROMPT)


def test_llm_extractor_asks_an_openai_compatible_endpoint_for_json_schema() -> None:
    requests: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content))
        message = {"role": "assistant", "content": json.dumps(MEMORIES)}
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "extractor-model",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    got = _openai_extractor(handler).extract("I moved to Porto last week.", speaker="user", at=AT)
    assert got == EXPECTED
    body = requests[0]
    assert body["model"] == "extractor-model"
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]
    assert schema["name"] == "ExtractedMemories"
    assert schema["strict"] is True
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_llm_extractor_falls_back_when_the_endpoint_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "boom"}})

    got = _openai_extractor(handler).extract("I live in Lisbon.", speaker="user", at=AT)
    assert [c.slot for c in got] == ["home_city"]


def test_make_extractor_builds_rules_or_an_openai_compatible_client() -> None:
    assert isinstance(
        make_extractor("rules", base_url=None, model=None, api_key=None), RuleExtractor
    )
    llm = make_extractor(
        "llm", base_url="http://vllm:8000/v1", model="qwen", api_key=None, prompt_template=PROMPT
    )
    assert isinstance(llm, LLMExtractor)
    assert isinstance(llm.chat_model, ChatOpenAI)
    assert llm.chat_model.model_name == "qwen"
    assert llm.chat_model.openai_api_base == "http://vllm:8000/v1"
    assert llm.chat_model.temperature == 0
    with pytest.raises(ValueError, match="model name"):
        make_extractor("llm", base_url="http://vllm:8000/v1", model=None, api_key=None)
    with pytest.raises(ValueError, match="unknown"):
        make_extractor("magic", base_url=None, model=None, api_key=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt template"):
        make_extractor("llm", base_url=None, model="qwen", api_key=None)


def test_prompt_is_versioned_jinja_with_declared_variables() -> None:
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment()
    assert meta.find_undeclared_variables(env.parse(PROMPT)) == {"now", "speaker", "subject"}


def test_the_extractor_sends_the_prompt_file_rendered_for_the_turn() -> None:
    model = ReplyModel(reply=json.dumps({"memories": []}))
    LLMExtractor(model, prompt_template=PROMPT).extract("I live in Rome.", speaker="user", at=AT)
    system = model.calls[0][0].text
    assert system.startswith("You extract long-term memories")
    assert "written by the user at 2026-11-22T15:30" in system
    assert "assistant's reply" not in system
