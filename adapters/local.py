"""The local backend's LangChain chat model, over a shared :class:`LocalEngine`.

The engine (``adapters.engine``) owns the model and the decode loop; this module only
translates between LangChain messages and chunks and the engine's dicts and chunks. A
:class:`LocalChatModel` is cheap: build one per request with its adapter and sampling
settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from adapters.engine import LocalEngine
from adapters.errors import AdapterNotFoundError, ModelNotFoundError
from adapters.streaming import GenerationChunk, normalize_stops

__all__ = [
    "AdapterNotFoundError",
    "LocalChatModel",
    "LocalEngine",
    "ModelNotFoundError",
    "to_chat_dicts",
]


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Convert LangChain messages to chat-template dicts.

    Args:
        messages: System, human, AI, tool or role-named chat messages.

    Returns:
        ``{"role", "content"}`` dicts in the same order.

    Raises:
        ValueError: A message type has no chat-template role.
    """
    converted: list[dict[str, str]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            role = "system"
        elif isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):
            role = "assistant"
        elif isinstance(message, ToolMessage):
            role = "tool"
        elif isinstance(message, ChatMessage):
            role = message.role
        else:
            raise ValueError(f"unsupported message type: {type(message).__name__}")
        converted.append({"role": role, "content": message.text})
    return converted


class LocalChatModel(BaseChatModel):
    """A chat model generating in-process with a shared engine and an optional adapter.

    The last streamed chunk (and the message :meth:`invoke` returns) carries
    ``usage_metadata`` and ``response_metadata`` with ``finish_reason`` (``stop`` or
    ``length``), ``adapter`` and ``model_name``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: LocalEngine = Field(exclude=True)
    """The process-wide engine holding the model."""
    adapter: str | None = None
    """LoRA adapter to generate with; ``None`` for the base model."""
    max_tokens: int = Field(default=256, ge=0)
    """Most tokens to generate."""
    temperature: float = Field(default=0.7, ge=0.0)
    """``0`` decodes greedily."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    stop: list[str] | None = None
    """Stop strings, merged with those given at call time."""
    seed: int | None = None
    """Makes sampling reproducible."""
    ignore_eos: bool = False
    """Sample past end-of-sequence tokens, so replies are always ``max_tokens`` long."""

    @property
    def _llm_type(self) -> str:
        return "attune-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.engine.model_id,
            "adapter": self.adapter,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
        }

    def _engine_params(self, stop: list[str] | None) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "max_new_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": normalize_stops([*(self.stop or ()), *(stop or ())]),
            "ignore_eos": self.ignore_eos,
        }

    def _to_langchain(self, chunk: GenerationChunk) -> ChatGenerationChunk:
        """Wrap an engine chunk; the final one gets usage and response metadata."""
        if chunk.usage is None:
            return ChatGenerationChunk(message=AIMessageChunk(content=chunk.text))
        usage: UsageMetadata = {
            "input_tokens": chunk.usage.prompt_tokens,
            "output_tokens": chunk.usage.completion_tokens,
            "total_tokens": chunk.usage.total_tokens,
        }
        metadata = {
            "finish_reason": chunk.finish_reason,
            "adapter": self.adapter,
            "model_name": self.engine.model_id,
        }
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=chunk.text,
                usage_metadata=usage,
                response_metadata=metadata,
                chunk_position="last",
            ),
            generation_info={"finish_reason": chunk.finish_reason},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the reply from the engine, in the calling thread.

        Args:
            messages: The conversation.
            stop: Stop strings added to the model's own.
            run_manager: Told of each new piece of text.
            **kwargs: Ignored.

        Yields:
            Text chunks, then a final chunk with usage and metadata.
        """
        for chunk in self.engine.stream(to_chat_dicts(messages), **self._engine_params(stop)):
            generation = self._to_langchain(chunk)
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=generation)
            yield generation

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Stream the reply, decoding in a worker thread so the event loop stays free.

        Args:
            messages: The conversation.
            stop: Stop strings added to the model's own.
            run_manager: Told of each new piece of text.
            **kwargs: Ignored.

        Yields:
            Text chunks, then a final chunk with usage and metadata.
        """
        stream = self.engine.astream(to_chat_dicts(messages), **self._engine_params(stop))
        async for chunk in stream:
            generation = self._to_langchain(chunk)
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=generation)
            yield generation

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Generate the whole reply (by collecting the stream).

        Args:
            messages: The conversation.
            stop: Stop strings added to the model's own.
            run_manager: Told of each new piece of text.
            **kwargs: Ignored.

        Returns:
            One generation whose message carries usage and metadata.
        """
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async :meth:`_generate`, over :meth:`_astream`.

        Args:
            messages: The conversation.
            stop: Stop strings added to the model's own.
            run_manager: Told of each new piece of text.
            **kwargs: Ignored.

        Returns:
            One generation whose message carries usage and metadata.
        """
        return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
