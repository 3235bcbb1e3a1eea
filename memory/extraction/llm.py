"""Schema-constrained calls to a chat model: the shared plumbing of the LLM extractors.

``ChatOpenAI`` against any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama)
is asked with ``method="json_schema"``; a chat model without schema support is asked
plainly and its reply parsed as JSON (fenced or bare).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, SecretStr

M = TypeVar("M", bound=BaseModel)
Structured = Runnable[LanguageModelInput, Any]


def openai_chat(
    *, base_url: str | None, model: str, api_key: str | None, timeout: float, max_retries: int
) -> BaseChatModel:
    """A deterministic (temperature 0) chat model on an OpenAI-compatible endpoint.

    Servers that need no key get a placeholder: keys are never read from the environment
    here, only from settings.
    """
    from langchain_openai import ChatOpenAI  # heavy import, only where configured

    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=SecretStr(api_key or "not-needed"),
        temperature=0,
        timeout=timeout,
        max_retries=max_retries,
    )


def structured(chat_model: BaseChatModel, schema: type[M]) -> Structured:
    """``chat_model`` answering with an instance (or dict) of ``schema``."""
    try:
        return chat_model.with_structured_output(schema, method="json_schema", strict=True)
    except NotImplementedError:
        # A chat model without tool or schema support: ask plainly, parse the reply.
        return chat_model | RunnableLambda(lambda message: parse_json_reply(message, schema))


def parse_json_reply(message: BaseMessage, schema: type[M]) -> M:
    """The JSON object in a plain reply (fenced or not), validated as ``schema``."""
    text = message.text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the model's reply holds no JSON object")
    return schema.model_validate_json(text[start : end + 1])


def as_model(result: object, schema: type[M]) -> M:
    """``result`` (an instance or a dict from structured output) as ``schema``."""
    if isinstance(result, dict):
        return schema.model_validate(result)
    if not isinstance(result, schema):
        raise TypeError(f"the model returned {type(result).__name__}, not {schema.__name__}")
    return result
