"""Versioned prompt templates: ``graph/prompts/<name>/v<N>.md``, rendered with Jinja2.

Every template is rendered with ``StrictUndefined`` so a variable a template uses but the
caller does not pass fails loudly instead of vanishing from the prompt. The variables a
prompt may use are declared here, next to the loader, and a test renders every version of
every prompt with them.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

import jinja2
from jinja2 import meta

PROMPTS_DIR = Path(__file__).with_name("prompts")
_VERSION = re.compile(r"^v(\d+)$")


class MemoryVar(TypedDict):
    """A recalled memory as the system prompt shows it.

    ``role`` is who said it (``user``, ``assistant``, or a named speaker of an imported
    conversation); ``who`` says the same in words for the prompt ("the user", "you, the
    assistant", "Caroline").
    """

    text: str
    date: str
    role: str
    who: str


class SystemPromptVars(TypedDict):
    """The variables every version of the ``system`` prompt may use.

    ``directives`` are the profile's preferences as sentences (name, language, tone,
    formality, length, formatting), ``instructions`` the user's standing rules, ``known``
    the user's current facts and preferences (semantic memories; versions that do not use
    it get them among ``memories``), ``learned``
    the user's active learned instruction block (procedural memory), ``style_hints`` and
    ``interests`` what the profile observed.
    """

    today: str
    preferred_name: str | None
    directives: list[str]
    instructions: list[str]
    learned: str | None
    known: list[MemoryVar]
    memories: list[MemoryVar]
    style_hints: list[str]
    interests: list[str]
    client_system: str | None


class ProceduralPromptVars(TypedDict):
    """The variables of the optimizer's ``procedural_critique``/``procedural_rewrite``.

    ``examples`` are dicts with ``prompt``, ``reply``, ``rating``, ``edited_text`` and
    ``comment`` (``memory.persona.procedural.FeedbackExample.as_vars``).
    """

    current: str | None
    critique: str
    examples: list[dict[str, Any]]


DECLARED_VARIABLES: dict[str, frozenset[str]] = {
    "system": frozenset(SystemPromptVars.__annotations__),
    "instruction_detect": frozenset(),
    "procedural_critique": frozenset({"current", "examples"}),
    "procedural_rewrite": frozenset(ProceduralPromptVars.__annotations__),
    # Memory's prompts (memory.extraction.extractor.EXTRACTION_PROMPT and
    # memory.extraction.summaries.SUMMARY_PROMPT).
    "extraction": frozenset({"now", "speaker", "subject"}),
    "summary": frozenset(),
}


class PromptNotFoundError(LookupError):
    """No such prompt, or no such version of it."""


class PromptLibrary:
    """Loads and renders the prompt templates under a directory."""

    def __init__(self, root: Path = PROMPTS_DIR) -> None:
        """Serve templates from ``root`` (one sub-directory per prompt name)."""
        self.root = root
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(root)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain text for a model, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def names(self) -> list[str]:
        """Prompt names, sorted."""
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("_")
        )

    def versions(self, name: str) -> list[str]:
        """Versions of prompt ``name``, oldest first (``v1``, ``v2``, … ``v10``)."""
        folder = self.root / name
        if not folder.is_dir():
            raise PromptNotFoundError(f"no prompt named {name!r}")
        found = [p.stem for p in folder.glob("v*.md") if _VERSION.match(p.stem)]
        return sorted(found, key=lambda v: int(v[1:]))

    def source(self, name: str, version: str) -> str:
        """The template text of ``name`` at ``version``."""
        path = self.root / name / f"{version}.md"
        if not _VERSION.match(version) or not path.is_file():
            raise PromptNotFoundError(f"prompt {name!r} has no version {version!r}")
        return path.read_text(encoding="utf-8")

    def variables(self, name: str, version: str) -> set[str]:
        """The variables the template of ``name`` at ``version`` refers to."""
        return set(meta.find_undeclared_variables(self._env.parse(self.source(name, version))))

    def render(self, name: str, version: str, variables: dict[str, Any]) -> str:
        """Render ``name`` at ``version``; missing variables raise ``UndefinedError``."""
        self.source(name, version)  # raises PromptNotFoundError with a clear message
        template = self._template(name, version)
        return template.render(**variables).strip()

    @cache  # noqa: B019  (one library per process; templates never change while it runs)
    def _template(self, name: str, version: str) -> jinja2.Template:
        return self._env.get_template(f"{name}/{version}.md")
