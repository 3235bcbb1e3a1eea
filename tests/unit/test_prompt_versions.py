"""Every prompt's active version is a setting, checked at start and shown by the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli import app
from graph.config import DEFAULT_PROMPT_VERSIONS, GraphSettings
from graph.prompts import PromptLibrary, PromptNotFoundError
from graph.show import PROMPTS_BY_STEP, describe
from memory.extraction.extractor import EXTRACTION_PROMPT, EXTRACTION_PROMPT_VERSION
from memory.extraction.summaries import SUMMARY_PROMPT, SUMMARY_PROMPT_VERSION
from wiring.services import build_core
from wiring.settings import Settings


def test_defaults_agree_with_the_modules_and_every_active_version_exists() -> None:
    assert DEFAULT_PROMPT_VERSIONS[EXTRACTION_PROMPT] == EXTRACTION_PROMPT_VERSION
    assert DEFAULT_PROMPT_VERSIONS[SUMMARY_PROMPT] == SUMMARY_PROMPT_VERSION
    library = PromptLibrary()
    for name, version in GraphSettings().active_versions().items():
        assert library.source(name, version)
    used = {n for names in PROMPTS_BY_STEP.values() for n in names}
    assert used == set(GraphSettings().active_versions())  # graph show names every prompt


def test_a_setting_overrides_one_prompt_and_system_keeps_its_own_setting() -> None:
    g = GraphSettings(prompt_version="v3", prompt_versions={"extraction": "v1"})
    assert g.version_of("extraction") == "v1" and g.version_of("summary") == "v1"
    assert g.version_of("system") == "v3"
    assert GraphSettings(prompt_versions={"system": "v2"}).version_of("system") == "v2"
    shown = describe(g)
    assert "compose_prompt" in shown and "system v3" in shown and "extraction v1" in shown
    assert shown.startswith("---") and "load_context --> apply_instructions" in shown


def test_a_missing_prompt_version_fails_at_start(settings: Settings) -> None:
    settings.graph.prompt_versions = {"summary": "v99"}
    with pytest.raises(PromptNotFoundError, match="summary"):
        build_core(settings)


def test_graph_show_prints_the_drawing_and_the_versions() -> None:
    out = CliRunner().invoke(app, ["graph", "show"])
    assert out.exit_code == 0, out.output
    assert "graph TD;" in out.output and "procedural_rewrite v1" in out.output
