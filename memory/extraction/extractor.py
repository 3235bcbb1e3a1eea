"""Extraction of semantic memories (facts, preferences, instructions) from one turn.

An :class:`Extractor` turns what was said into :class:`Candidate` memories; what to do with
them given what is already remembered is :func:`memory.extraction.consolidate.plan`'s decision. Two
extractors ship:

* :class:`RuleExtractor`: deterministic rules over the user's own first-person statements
  (:mod:`memory.extraction.rules`, :mod:`memory.extraction.instructions`). Always works,
  needs no model, misses anything phrased unusually.
* :class:`LLMExtractor`: any LangChain chat model, asked for JSON that matches a schema
  (``with_structured_output(..., method="json_schema")``, so an OpenAI-compatible endpoint
  constrains its output). On any error or invalid output it falls back to the rules.

:func:`make_extractor` picks one from settings. Relative dates ("last week") are resolved
against the turn's timestamp (:mod:`memory.extraction.dates`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import jinja2
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from memory.extraction.dates import resolve_relative_dates
from memory.extraction.instructions import match_instructions
from memory.extraction.llm import as_model, openai_chat, structured
from memory.extraction.rules import match_facts
from memory.extraction.self_statements import self_statements
from memory.extraction.text import Kind, slot_key, split_clauses, split_sentences

log = logging.getLogger(__name__)

Speaker = Literal["user", "assistant"]


@dataclass(frozen=True)
class Candidate:
    """A memory an extractor proposes, before consolidation against what is stored.

    Attributes:
        kind: ``fact``, ``preference`` or ``instruction``.
        text: A self-contained third-person statement ("The user lives in Lisbon.").
        slot: What it is about (``home_city``, ``likes:sushi``), so that a newer candidate
            in the same slot supersedes it; ``None`` when nothing can contradict it.
        speaker: Who said it.
        valid_from: When it became true, when the turn states it; else ``None`` (the
            caller uses the turn's timestamp).
    """

    kind: Kind
    text: str
    slot: str | None
    speaker: Speaker
    valid_from: datetime | None


class Extractor(Protocol):
    """Turns one turn's text into candidate memories."""

    def extract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """Candidates stated in ``text``, said by ``speaker`` (``user``/``assistant``) at ``at``.

        ``subject`` names the person who wrote ``text`` when that is not the user being
        served (a named speaker of an imported conversation, "Caroline"): candidates are
        then about that person ("Caroline is vegetarian."), whatever the turn's role.
        """
        ...

    async def aextract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """Async :meth:`extract`."""
        ...


def normalize(text: str) -> str:
    """``text`` for comparison: NFKC, lowercased, whitespace collapsed, end punctuation gone."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip().rstrip(".!?;:,… ").strip()


def content_hash(text: str) -> str:
    """SHA-256 hex digest of :func:`normalize` of ``text``: equal for duplicate memories."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """``candidates`` without repeated texts (by :func:`content_hash`), first one kept."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for candidate in candidates:
        digest = content_hash(candidate.text)
        if digest not in seen:
            seen.add(digest)
            out.append(candidate)
    return out


class RuleExtractor:
    """Deterministic extraction from the user's own statements; assistant text yields nothing.

    Each sentence is checked for standing instructions (questions included: "could you call
    me Sam?"); each clause of a sentence that is not a question is checked for facts and
    preferences, with its relative dates resolved and its ``valid_from`` set from them.
    """

    def extract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """See :meth:`Extractor.extract`.

        Per clause, the narrow slot rules first (``memory.extraction.rules``); a clause
        they do not know is tried as a durable self-statement
        (``memory.extraction.self_statements``). A named ``subject``'s own instructions to
        their interlocutor are not the user's, so none are extracted for them.
        """
        if speaker != "user" and subject is None:
            return []
        who: Speaker = "assistant" if speaker == "assistant" else "user"
        found: list[Candidate] = []
        for sentence in split_sentences(text):
            _, when = resolve_relative_dates(sentence, at)
            if subject is None:
                for kind, statement, slot in match_instructions(sentence):
                    found.append(Candidate(kind, statement, slot, who, when))
            if sentence.endswith("?"):
                continue
            for clause in split_clauses(sentence):
                resolved, since = resolve_relative_dates(clause, at)
                matched = match_facts(resolved) or self_statements(resolved)
                for kind, statement, slot in matched:
                    if subject is not None:
                        statement, slot = about(subject, statement, slot)
                    found.append(Candidate(kind, statement, slot, who, since))
        return dedupe(found)

    async def aextract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """See :meth:`Extractor.aextract` (runs inline: the rules take microseconds)."""
        return self.extract(text, speaker=speaker, at=at, subject=subject)


def about(subject: str, statement: str, slot: str | None) -> tuple[str, str | None]:
    """A statement about "the user" rewritten about ``subject``, its slot kept apart."""
    possessive = f"{subject}'" if subject.endswith("s") else f"{subject}'s"
    text = re.sub(r"\bthe user's\b", possessive, statement, flags=re.IGNORECASE)
    text = re.sub(r"\bthe user\b", subject, text, flags=re.IGNORECASE)
    return text, (f"{slot_key(subject)}:{slot}" if slot else None)


EXTRACTION_PROMPT = "extraction"
"""The LLM extractor's system prompt: ``graph/prompts/extraction/v<N>.md``, a Jinja2 template
with variables ``now`` (ISO time of the turn), ``speaker`` and ``subject`` (a named writer, or
``None`` for the user). ``memory`` does not import ``graph``: the composition root
(``wiring/services.py``) loads the template and passes its text in."""
EXTRACTION_PROMPT_VERSION = "v2"


class ExtractedMemory(BaseModel):
    """One durable thing about the person who wrote the message."""

    kind: Literal["fact", "preference", "instruction"]
    text: str = Field(
        description='A third-person sentence starting with "The user" (or the writer\'s name).'
    )
    slot: str | None = Field(description="What the item is about, e.g. home_city; or null.")
    valid_from: str | None = Field(description="YYYY-MM-DD it became true, or null.")


class ExtractedMemories(BaseModel):
    """The memories found in one message (possibly none)."""

    memories: list[ExtractedMemory]


class LLMExtractor:
    """Extraction by a chat model with schema-constrained JSON, falling back to rules.

    Models that implement ``with_structured_output`` (``ChatOpenAI`` against any
    OpenAI-compatible endpoint: OpenAI, vLLM, llama.cpp, Ollama) are asked with
    ``method="json_schema"``; other chat models are asked plainly and their reply parsed
    as JSON. A model error, unparsable or invalid output makes :meth:`extract` log a
    warning and return what ``fallback`` (the rules, by default) finds instead.
    """

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        prompt_template: str,
        fallback: Extractor | None = None,
    ) -> None:
        """Use ``chat_model`` (temperature 0 recommended); ``fallback`` on its failures.

        Args:
            chat_model: The model asked for the memories.
            prompt_template: The system prompt's Jinja2 source (``EXTRACTION_PROMPT``),
                with variables ``now`` and ``speaker``.
            fallback: The extractor used when the model fails (the rules by default).
        """
        self.chat_model = chat_model
        self.fallback: Extractor = fallback or RuleExtractor()
        self._runnable = structured(chat_model, ExtractedMemories)
        self._template = _compile(prompt_template)

    def extract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """See :meth:`Extractor.extract`."""
        if speaker not in ("user", "assistant") or not text.strip():
            return []
        try:
            messages = self._messages(text, speaker=speaker, at=at, subject=subject)
            return _candidates(self._runnable.invoke(messages), speaker, at, subject)
        except Exception as exc:  # any model or output failure: the rules still work
            _warn(exc)
        return self.fallback.extract(text, speaker=speaker, at=at, subject=subject)

    async def aextract(
        self, text: str, *, speaker: str, at: datetime, subject: str | None = None
    ) -> list[Candidate]:
        """See :meth:`Extractor.aextract`."""
        if speaker not in ("user", "assistant") or not text.strip():
            return []
        try:
            messages = self._messages(text, speaker=speaker, at=at, subject=subject)
            return _candidates(await self._runnable.ainvoke(messages), speaker, at, subject)
        except Exception as exc:  # any model or output failure: the rules still work
            _warn(exc)
        return await self.fallback.aextract(text, speaker=speaker, at=at, subject=subject)

    def _messages(
        self, text: str, *, speaker: str, at: datetime, subject: str | None
    ) -> list[BaseMessage]:
        now = at.isoformat(timespec="minutes")
        variables = {"speaker": speaker, "now": now, "subject": subject}
        system = self._template.render(**variables).strip()
        # Resolved dates help a small model: "last week (around 2026-11-15)".
        annotated = " ".join(resolve_relative_dates(s, at)[0] for s in split_sentences(text))
        return [SystemMessage(system), HumanMessage(annotated or text)]


def make_extractor(
    kind: Literal["rules", "llm"],
    *,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    timeout: float = 30.0,
    max_retries: int = 2,
    prompt_template: str | None = None,
) -> Extractor:
    """The extractor a deployment configured.

    Args:
        kind: ``rules`` (no model) or ``llm`` (an OpenAI-compatible endpoint).
        base_url: The endpoint, e.g. ``http://vllm:8000/v1``; ``None`` for OpenAI itself.
        model: The model name the endpoint serves; required for ``llm``.
        api_key: The endpoint's key; servers that need none get a placeholder (never read
            from the environment here).
        timeout: Seconds per request.
        max_retries: Retries per request before falling back to the rules.
        prompt_template: The ``EXTRACTION_PROMPT`` template's text; required for ``llm``.

    Raises:
        ValueError: ``llm`` without a model name or prompt, or an unknown kind.
    """
    if kind == "rules":
        return RuleExtractor()
    if kind != "llm":
        raise ValueError(f"unknown extractor kind {kind!r}")
    if not model:
        raise ValueError("the llm extractor needs a model name")
    if not prompt_template:
        raise ValueError("the llm extractor needs its prompt template")
    chat = openai_chat(
        base_url=base_url, model=model, api_key=api_key, timeout=timeout, max_retries=max_retries
    )
    return LLMExtractor(chat, prompt_template=prompt_template)


def extract_memories(
    text: str, *, speaker: str, at: datetime, extractor: Extractor | None = None
) -> list[Candidate]:
    """Candidates stated in one turn, by ``extractor`` (the rules by default), deduplicated."""
    return dedupe((extractor or RuleExtractor()).extract(text, speaker=speaker, at=at))


def _compile(source: str) -> jinja2.Template:
    # The same options as graph.prompts.PromptLibrary, so both render a template alike.
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(source)


def _candidates(
    result: object, speaker: str, at: datetime, subject: str | None = None
) -> list[Candidate]:
    memories = as_model(result, ExtractedMemories)
    who: Speaker = "assistant" if speaker == "assistant" else "user"
    found: list[Candidate] = []
    for item in memories.memories:
        text = " ".join(item.text.split())
        if not text or len(text) > 500:
            continue
        slot = re.sub(r"\s+", "_", item.slot.strip().lower()) if item.slot else None
        if subject is not None:
            text, slot = about(subject, text, slot)
        found.append(Candidate(item.kind, text, slot or None, who, _date(item.valid_from, at)))
    return dedupe(found)


def _date(value: str | None, at: datetime) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None  # one unreadable date is no reason to drop the memory
    return parsed.replace(tzinfo=at.tzinfo) if parsed.tzinfo is None else parsed


def _warn(exc: Exception) -> None:
    kind = "invalid output" if isinstance(exc, ValidationError | json.JSONDecodeError) else "error"
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    log.warning(
        "memory extraction model %s (%s: %s); using rules", kind, type(exc).__name__, detail
    )
