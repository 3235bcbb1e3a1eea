"""The vLLM backend's chat model: LangChain's ``ChatOpenAI`` with our errors.

A request naming an adapter the server does not hold comes back as OpenAI's 404; a server
that does not answer as a connection error. The graph and the API only know the backends'
own errors, so this subclass translates them (and nothing else) on every path: invoke,
stream, and their async forms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from adapters.errors import AdapterNotFoundError, BackendUnavailableError


class VllmChatModel(ChatOpenAI):
    """``ChatOpenAI`` against one vLLM replica, raising the backends' errors.

    ``on_down`` is told when the replica stops answering (the backend takes it out of
    rotation); ``retry_after_s`` goes into the :class:`BackendUnavailableError`.
    """

    _on_down: Callable[[], None] | None = PrivateAttr(default=None)
    _retry_after_s: int = PrivateAttr(default=5)

    def configure(self, *, on_down: Callable[[], None], retry_after_s: int) -> VllmChatModel:
        """Set what happens when the replica is down; returns ``self``."""
        self._on_down = on_down
        self._retry_after_s = retry_after_s
        return self

    def _translate(self, exc: Exception) -> Exception:
        if isinstance(exc, openai.NotFoundError):
            return AdapterNotFoundError(self.model_name)
        if isinstance(exc, openai.APIConnectionError | openai.InternalServerError):
            if self._on_down is not None:
                self._on_down()
            return BackendUnavailableError(
                f"the model server {self.openai_api_base} does not answer; retry shortly",
                retry_after_s=self._retry_after_s,
            )
        return exc

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        except openai.APIError as exc:
            raise self._translate(exc) from exc

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        except openai.APIError as exc:
            raise self._translate(exc) from exc

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        held: ChatGenerationChunk | None = None
        try:
            for chunk in super()._stream(messages, stop, run_manager, **kwargs):
                if held is not None:
                    yield held
                held = chunk
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        if held is not None:
            yield _last(held)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        held: ChatGenerationChunk | None = None
        try:
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                if held is not None:
                    yield held
                held = chunk
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        if held is not None:
            yield _last(held)


def _last(chunk: ChatGenerationChunk) -> ChatGenerationChunk:
    """Mark the stream's last chunk (it carries the usage) as last.

    Otherwise LangChain appends an empty chunk after it, and the usage would not be on the
    last chunk, where the ChatBackend contract (and the local backend) put it.
    """
    if isinstance(chunk.message, AIMessageChunk) and not chunk.message.chunk_position:
        chunk.message.chunk_position = "last"
    return chunk
