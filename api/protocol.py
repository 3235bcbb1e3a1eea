"""Request and response bodies. Fields follow the OpenAI order; extensions are marked."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TextPart(BaseModel):
    """A text content part (``{"type": "text", "text": ...}``)."""

    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    """One message of a chat request."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        """The message's text, with content parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    """OpenAI ``stream_options``."""

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. Unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    messages: Annotated[list[ChatMessageIn], Field(min_length=1)]
    model: str = "attune"
    frequency_penalty: float | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1, description="only n=1 is supported")
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    user: str | None = None
    # Attune extension: continue this thread; only the last message is new.
    thread_id: str | None = Field(default=None, max_length=40)

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else v or []
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return v

    def stop_list(self) -> list[str] | None:
        """``stop`` as a list."""
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class AttuneInfo(BaseModel):
    """Attune extension object on chat responses."""

    turn_id: str
    thread_id: str
    target: str
    prompt_version: str
    memory_ids: list[str]


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

    name: str = Field(min_length=1, max_length=200)
    group_id: str | None = Field(default=None, max_length=40)


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
    thread_id: str | None = Field(default=None, max_length=40)


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
