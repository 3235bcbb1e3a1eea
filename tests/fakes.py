"""Scripted stand-ins for unit tests of logic (the real model is tested in integration)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from adapters.errors import AdapterNotFoundError


class ScriptedChatModel(BaseChatModel):
    """Replies with ``script`` (or echoes the last message), one word per chunk."""

    script: str | None = None
    adapter: str | None = None
    max_tokens: int = 256
    stop: list[str] | None = None
    recorder: Any = None
    """Gets ``.calls.append(messages)`` for every call (pydantic would copy a list)."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, messages: list[BaseMessage]) -> tuple[list[str], str]:
        if self.recorder is not None:
            self.recorder.calls.append(list(messages))
        text = self.script if self.script is not None else f"echo: {messages[-1].text}"
        words = text.split(" ")
        finish = "stop"
        if len(words) > self.max_tokens:
            words, finish = words[: self.max_tokens], "length"
        out = " ".join(words)
        for s in self.stop or []:
            if s in out:
                out, finish = out[: out.index(s)], "stop"
        pieces = [w + " " for w in out.split(" ")]
        pieces[-1] = pieces[-1].rstrip(" ")
        return [p for p in pieces if p], finish

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        pieces, finish = self._reply(messages)
        msg = AIMessage(content="".join(pieces), response_metadata={"finish_reason": finish})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        if self.recorder is not None:
            self.recorder.bound_tools = [t.name for t in tools]
        return self

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        script = getattr(self.recorder, "tool_script", None)
        if script:
            calls = script.pop(0)
            if self.recorder is not None:
                self.recorder.calls.append(list(messages))
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": f"call_{i}",
                            "index": i,
                        }
                        for i, c in enumerate(calls)
                    ],
                )
            )
            return
        pieces, finish = self._reply(messages)
        for piece in pieces:
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        prompt = sum(len(m.text.split()) for m in messages)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": prompt,
                    "output_tokens": len(pieces),
                    "total_tokens": prompt + len(pieces),
                },
                response_metadata={"finish_reason": finish, "adapter": self.adapter},
                chunk_position="last",  # usage comes last, as from the real backends
            )
        )

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        gate = getattr(self.recorder, "gate", None)
        for i, chunk in enumerate(self._stream(*args, **kwargs)):
            if i == 1 and gate is not None:  # after the first token: mid-generation
                await gate.wait()
            yield chunk


@dataclass
class ScriptedBackend:
    """A ``ChatBackend`` over ``ScriptedChatModel``; counts tokens as words."""

    script: str | None = None
    adapters: set[str] = field(default_factory=set)
    name: str = "scripted"
    model_id: str = "scripted-echo"
    calls: list[list[BaseMessage]] = field(default_factory=list)
    requested_adapters: list[str | None] = field(default_factory=list)
    supports_tools: bool = False
    output_formats: frozenset[str] = frozenset({"text"})
    response_formats: list[dict[str, Any] | None] = field(default_factory=list)
    """The ``response_format`` of every chat model asked for, in order."""
    tool_script: list[list[dict[str, Any]]] = field(default_factory=list)
    """Replies that call tools, used in order before the scripted text reply."""
    bound_tools: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    """Adapters handed to :meth:`publish`, in order."""
    gate: Any = None
    """An ``asyncio.Event``: streams pause after their first token until it is set."""
    sampling: list[dict[str, Any]] = field(default_factory=list)
    """``max_tokens``, ``temperature`` and ``top_p`` of every chat model asked for."""

    def chat_model(
        self,
        *,
        adapter: str | None,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
        ignore_eos: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> BaseChatModel:
        if (response_format or {}).get("type", "text") not in self.output_formats:
            raise ValueError(f"the scripted backend cannot honour {response_format}")
        if adapter is not None and adapter not in self.adapters:
            raise AdapterNotFoundError(adapter)
        self.requested_adapters.append(adapter)
        self.response_formats.append(response_format)
        self.sampling.append({"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p})
        return ScriptedChatModel(
            script=self.script, adapter=adapter, max_tokens=max_tokens, stop=stop, recorder=self
        )

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def has_adapter(self, name: str) -> bool:
        return name in self.adapters

    def publish(self, name: str, path: Path) -> None:
        """Serve ``name`` from now on, if ``path`` holds an adapter (as the local backend)."""
        if not name or "/" in name or not (path / "adapter_config.json").is_file():
            raise AdapterNotFoundError(name)
        self.adapters.add(name)
        self.published.append(name)

    def unpublish(self, name: str) -> bool:
        """Stop serving ``name`` (this fake finds no adapter by name on its own)."""
        held = name in self.adapters
        self.adapters.discard(name)
        return held


class ReplyModel(BaseChatModel):
    """A chat model without tool or schema support that replies with fixed content."""

    reply: str = ""
    error: str | None = None
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-reply"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        if self.error:
            raise RuntimeError(self.error)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])
