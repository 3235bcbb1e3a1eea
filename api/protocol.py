"""Request and response bodies. Fields follow the OpenAI order; extensions are marked."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

MAX_INT = 2**53 - 1
"""The largest offset, version or count a request may carry: exact in JSON (and in
JavaScript), far inside the database's 64-bit integers, so no number a client sends can
overflow a query (that gave 500 before)."""
"""What every Attune id (``usr_…``, ``thr_…``, ``grp_…``) looks like."""


def plain_text(value: str) -> str:
    r"""Refuse text the stores cannot hold: NUL characters and unpaired surrogates.

    JSON lets a client send ``"\u0000"`` or a lone ``"\ud800"``; PostgreSQL refuses the
    first and UTF-8 cannot encode the second, so both would fail deep inside a turn.
    """
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text must be valid Unicode; it has an unpaired surrogate escape such as \\ud800"
        ) from None
    return value


Text = Annotated[str, AfterValidator(plain_text)]
"""A string that can be stored and encoded as UTF-8."""

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN.pattern, max_length=40)]
"""An Attune id: letters, digits, ``_`` and ``-``, at most 40 characters."""


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages ("a list", "null", ...)."""
    if isinstance(value, bytes):
        return "raw bytes"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class TextPart(BaseModel):
    """A text content part (``{"type": "text", "text": ...}``)."""

    type: Literal["text"]
    text: Text


class ChatMessageIn(BaseModel):
    """One message of a chat request."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, v: Any) -> Any:
        # Checked here, not by the union, so a client reads one sentence instead of
        # one error per union member.
        if isinstance(v, str):
            return plain_text(v)
        if not isinstance(v, list):
            raise ValueError(
                f"content must be a string or a list of text parts, not {json_type(v)}"
            )
        for i, part in enumerate(v):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                what = f"a part of type {kind!r}" if isinstance(kind, str) else json_type(part)
                raise ValueError(
                    f"content[{i}] is {what}; only text parts "
                    '({"type": "text", "text": "..."}) are supported'
                )
            if not isinstance(part.get("text"), str):
                raise ValueError(f"content[{i}].text must be a string")
            plain_text(part["text"])
        return v

    def text(self) -> str:
        """The message's text, with content parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``."""

    include_usage: StrictBool = False


class AttuneRequest(BaseModel):
    """Attune extension object on chat requests."""

    model_config = ConfigDict(extra="forbid")

    regenerate: Id | None = None
    """An assistant turn id of this user: reply again to the same prompt, exactly as it was
    sent (the request's messages are then not used)."""
    temporary: StrictBool = False
    """A temporary chat: no memory is read (recall, known facts) or written (turns, thread
    state, distillation, profile changes, training data). The profile's name, tone and
    standing instructions still apply, as custom instructions do."""


class JsonSchemaFormat(BaseModel):
    """``response_format.json_schema``: a named JSON Schema the reply must follow."""

    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: StrictBool | None = None


class ResponseFormat(BaseModel):
    """OpenAI ``response_format``: free ``text``, any ``json_object``, or a ``json_schema``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is required with type json_schema, and only then")
        return self

    def for_backend(self) -> dict[str, Any] | None:
        """What backends take: ``None`` for plain text, else the OpenAI object."""
        if self.type == "text":
            return None
        return self.model_dump(by_alias=True, exclude_none=True)


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``.

    Unknown OpenAI fields are accepted and ignored; the ones that would change the reply
    and that the backend cannot honour are refused (``api.routes.chat.check_honoured``),
    never dropped silently.
    """

    model_config = ConfigDict(extra="ignore")

    messages: Annotated[list[ChatMessageIn], Field(min_length=1)]
    model: str = "attune"
    frequency_penalty: float | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)  # a huge one: a 400 from reply_budget
    n: int = Field(default=1, ge=1, le=1, description="only n=1 is supported")
    presence_penalty: float | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    stream: StrictBool = False  # "yes" or 1 is refused, not taken as true
    stream_options: StreamOptions | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    user: str | None = None  # accepted for compatibility; the user is always the key's
    # Attune extension: continue this thread; only the last message is new.
    thread_id: Id | None = None
    # Attune extension: {"regenerate": turn_id}.
    attune: AttuneRequest | None = None
    response_format: ResponseFormat | None = None
    # Accepted so that they can be refused by name (check_honoured), not dropped.
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: StrictBool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Any] | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, v: Any) -> Any:
        if v is None:
            return v
        stops = [v] if isinstance(v, str) else v
        if (
            not isinstance(stops, list)
            or len(stops) > 4
            or not all(isinstance(s, str) and s for s in stops)
        ):
            raise ValueError("stop takes a string or a list of up to 4 non-empty strings")
        for s in stops:
            plain_text(s)
        return v

    def stop_list(self) -> list[str] | None:
        """``stop`` as a list."""
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ExperimentArm(BaseModel):
    """The arm a turn ran in."""

    experiment_id: str
    name: str
    arm: str


class AttuneInfo(BaseModel):
    """Attune extension object on chat responses."""

    turn_id: str
    thread_id: str
    target: str
    prompt_version: str
    memory_ids: list[str]
    experiments: list[ExperimentArm] = Field(
        default_factory=list, description="The user's arm in each live experiment."
    )
    temporary: bool = Field(default=False, description="Nothing of this turn was stored.")
    degraded: list[str] = Field(
        default_factory=list,
        description='What memory search ranked without: ["dense"] while the vector index is '
        "down (the lexical index alone answered).",
    )


class ChatMessageOut(BaseModel):
    """The assistant's message."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """One choice of a completion (Attune always returns one)."""

    index: int = 0
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: str


class UsageOut(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """``chat.completion`` response."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageOut
    attune: AttuneInfo  # extension


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "attune"
    description: str


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class UserCreate(BaseModel):
    """``POST /v1/users``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        AfterValidator(plain_text),
    ]
    group_id: Id | None = None


class UserCreated(BaseModel):
    """A new user and their key (shown once)."""

    id: str
    name: str
    api_key: str


class PreviewRequest(BaseModel):
    """``POST /v1/users/{id}/prompt/preview``."""

    model_config = ConfigDict(extra="ignore")

    messages: Annotated[list[ChatMessageIn], Field(min_length=1)]
    model: str = "attune"
    max_tokens: int | None = Field(default=None, ge=1)
    thread_id: Id | None = None


class PreviewResponse(BaseModel):
    """What a turn would send, without generating."""

    thread_id: str | None
    prompt_version: str
    system_prompt: str
    messages: list[dict[str, str]]
    memories: list[dict[str, Any]]
    route: dict[str, Any]
    prompt_tokens: int
    profile_updates: list[dict[str, Any]]
