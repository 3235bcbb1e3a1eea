"""Instruction detection improved by a chat model on an OpenAI-compatible endpoint.

The rules (``memory.persona.instructions``) always run and always win on a field they decide.
When a cheap filter says a message might carry an instruction the rules did not find
(it mentions names, languages, length, emoji, formatting, tone, "from now on", "stop",
"forget" …), the model is asked for the updates as schema-constrained JSON; its updates
for fields the rules left alone are added, after validation against the same field and
value vocabulary. A model error or unusable output leaves the rules' answer unchanged, so
detection never depends on the endpoint being up.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

import jinja2
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from memory.extraction.llm import as_model, openai_chat, structured
from memory.persona.instructions import LANGUAGES, ProfileUpdate, detect_instructions
from memory.persona.instructions_model import ClassifierDetector
from memory.retrieval.protocols import Embedder

log = logging.getLogger(__name__)

FieldName = Literal[
    "preferred_name",
    "language",
    "tone",
    "formality",
    "verbosity",
    "formatting.emoji",
    "formatting.lists",
    "formatting.markdown",
    "instructions",
    "memories",
]

_MAYBE = re.compile(
    r"\b(?:call|name|address|answer|reply|respond|speak|talk|write|switch|language|emoji|"
    r"short|brief|concise|long|detail|verbose|list|bullet|markdown|plain|formal|casual|"
    r"professional|tone|voice|pirate|like\s+a|from\s+now|going\s+forward|always|never|"
    r"stop|anymore|no\s+longer|forget|don'?t|prefer|please|" + "|".join(LANGUAGES) + r")",
    re.IGNORECASE,
)


class DetectedUpdate(BaseModel):
    """One update as the model reports it."""

    field: FieldName
    op: Literal["set", "unset", "add", "remove", "forget"]
    value: str | bool | None = Field(
        description="The new value; true/false for formatting; the rule's words for "
        "instructions; what to forget for memories; null to unset."
    )


class DetectedUpdates(BaseModel):
    """Every standing instruction or preference the message gives the assistant."""

    updates: list[DetectedUpdate]


_OPS: dict[str, set[str]] = {
    "preferred_name": {"set", "unset"},
    "language": {"set", "unset"},
    "tone": {"set", "unset"},
    "formality": {"set", "unset"},
    "verbosity": {"set", "unset"},
    "formatting": {"set"},
    "instructions": {"add", "remove"},
    "memories": {"forget"},
}
_VALUES: dict[str, set[object]] = {
    "formality": {"formal", "casual"},
    "verbosity": {"brief", "detailed"},
}


def might_instruct(text: str) -> bool:
    """Whether ``text`` is worth asking the model about (cheap; errs towards yes)."""
    return bool(_MAYBE.search(text))


class LLMInstructionDetector:
    """The rules plus a model for what they miss; see the module docstring."""

    def __init__(self, chat_model: BaseChatModel, *, prompt_template: str) -> None:
        """Ask ``chat_model`` with the system prompt ``prompt_template`` (Jinja2, no variables)."""
        self.chat_model = chat_model
        self._runnable = structured(chat_model, DetectedUpdates)
        self._system = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
            prompt_template
        )

    async def __call__(self, text: str) -> list[ProfileUpdate]:
        """The profile updates ``text`` asks for."""
        found = detect_instructions(text)
        if not might_instruct(text):
            return found
        try:
            reply = await self._runnable.ainvoke(
                [SystemMessage(self._system.render().strip()), HumanMessage(text)]
            )
            extra = _validated(as_model(reply, DetectedUpdates))
        except Exception as exc:  # any model or output failure: the rules' answer stands
            # The type only: a validation error quotes the model's output, and so the user.
            log.warning("instruction model failed (%s), using the rules alone", type(exc).__name__)
            return found
        decided = {u.field for u in found}
        return [*found, *(u for u in extra if u.field not in decided)]


def _validated(result: DetectedUpdates) -> list[ProfileUpdate]:
    """The model's updates that fit the profile's vocabulary, normalized."""
    out: list[ProfileUpdate] = []
    for item in result.updates:
        field, op, value = item.field, item.op, item.value
        if op not in _OPS["formatting" if field.startswith("formatting.") else field]:
            continue
        if op == "unset":
            value = None
        elif field.startswith("formatting."):
            if not isinstance(value, bool):
                continue
        elif field == "language":
            value = next((lang for lang in LANGUAGES if str(value).lower() == lang.lower()), None)
            if value is None:
                continue
        elif field in _VALUES:
            if value not in _VALUES[field]:
                continue
        elif not isinstance(value, str) or not value.strip() or len(value) > 200:
            continue
        if isinstance(value, str):
            value = value.strip()
        out.append(ProfileUpdate(field, op, value, f"detected by the instruction model ({op})"))
    return out


def make_detector(
    kind: Literal["rules", "classifier", "llm"],
    *,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    prompt_template: str | None,
    embedder: Embedder | None = None,
    timeout: float = 10.0,
    max_retries: int = 1,
) -> LLMInstructionDetector | ClassifierDetector | None:
    """The configured detector: ``None`` for the rules alone, else the model-backed one.

    ``classifier``: the rules plus the bundled MiniLM classifier
    (``memory.persona.instructions_model``) on ``embedder`` — the memory service's, so the
    process holds one MiniLM; without one, its own loads on the first message.

    Raises:
        ValueError: ``llm`` without a model name or prompt, or an unknown kind.
    """
    if kind == "rules":
        return None
    if kind == "classifier":
        if embedder is None:
            from memory.retrieval.embeddings import MiniLMEmbedder

            embedder = MiniLMEmbedder()
        return ClassifierDetector(embedder)
    if kind != "llm":
        raise ValueError(f"unknown instruction detector {kind!r}")
    if not model or not prompt_template:
        raise ValueError("the llm instruction detector needs a model name and its prompt")
    chat = openai_chat(
        base_url=base_url, model=model, api_key=api_key, timeout=timeout, max_retries=max_retries
    )
    return LLMInstructionDetector(chat, prompt_template=prompt_template)
