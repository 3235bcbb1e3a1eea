"""``attune eval instructions``: instruction detection precision and recall."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evals.cli_support import JsonOut, write_json


def instructions(
    json_path: JsonOut = None,
    cases_path: Annotated[
        Path | None,
        typer.Option(
            "--cases",
            help='Score this JSON file of cases instead: [{"text", "expected": [[field, op, '
            'value], ...], "kind"}] (value a string, a bool, or null for an unset; for '
            "instructions/add a substring of the detected rule).",
        ),
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            "--detector",
            help="rules: the rules alone; classifier: the rules plus the MiniLM classifier "
            "(the default detector).",
        ),
    ] = "classifier",
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Score the generated messages: held-out templates and values (the "
            "headline), then the split the classifier was trained on.",
        ),
    ] = False,
    with_model: Annotated[
        bool,
        typer.Option(
            "--with-model",
            help="Score the rules plus the configured instruction model "
            "(ATTUNE_MEMORY__EXTRACTOR_BASE_URL / _MODEL) instead.",
        ),
    ] = False,
) -> None:
    """Precision and recall of instruction detection on labelled phrasings.

    By default the built-in sets, per split (dev, test and holdout1 were seen while writing
    the rules; holdout2 was written blind, but its misses were named in issue 12 and
    studied since) and per kind (instructions, revocations, look-alikes), then every miss
    and false alarm. ``--cases`` scores a file instead; ``--synthetic`` the generated sets.
    """
    from evals.suites.instructions.suite import ALL_CASES, Detector, load_cases, report, score
    from memory.persona.instructions import detect_instructions

    detect: Detector = detect_instructions
    if with_model:
        detect = _model_detector()
    elif detector == "classifier":
        detect = _classifier_detector()
    elif detector != "rules":
        raise typer.BadParameter("rules or classifier", param_hint="--detector")

    if synthetic:
        from evals.suites.instructions.synthetic import synthetic_cases

        sets = {
            "heldout (headline)": synthetic_cases("heldout"),
            "train (tuned on)": synthetic_cases("train"),
        }
    elif cases_path is not None:
        sets = {str(cases_path): load_cases(cases_path)}
    else:
        sets = {"built-in sets": list(ALL_CASES)}
    figures = {
        name: {"cases": len(cases), "precision": r.precision, "recall": r.recall}
        for name, cases in sets.items()
        for r in [score(cases, detect)]
    }
    if not synthetic and cases_path is None:
        figures |= {
            split: {"cases": len(chosen), "precision": r.precision, "recall": r.recall}
            for split in ("dev", "test", "holdout1", "holdout2")
            for chosen in [[c for c in ALL_CASES if c.split == split]]
            for r in [score(chosen, detect)]
        }
    write_json(json_path, figures)
    for name, cases in sets.items():
        typer.echo(f"== {name} (detector: {'llm' if with_model else detector})")
        typer.echo(report(cases, detect=detect))
    from evals.suites import instructions_run, record

    dataset = "synthetic" if synthetic else str(cases_path) if cases_path else "built-in sets"
    record(instructions_run(sets, detect, "llm" if with_model else detector, dataset))


def _classifier_detector() -> Any:
    """The rules plus the bundled classifier, as a plain function."""
    from memory.persona.instructions_model import ClassifierDetector
    from memory.retrieval.embeddings import MiniLMEmbedder

    return ClassifierDetector(_CachedEmbedder(MiniLMEmbedder())).detect


class _CachedEmbedder:
    """An embedder that remembers vectors: a report scores each case several times."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dimension: int = inner.dimension
        self.model_id: str = inner.model_id
        self._seen: dict[str, list[float]] = {}

    def embed(self, texts: Any) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            self._seen.update(zip(missing, self.inner.embed(missing), strict=True))
        return [self._seen[t] for t in texts]


def _model_detector() -> Any:
    """The rules plus the configured instruction model, as a plain function."""
    import asyncio

    from graph.prompts import PromptLibrary
    from memory.persona.instructions_llm import make_detector
    from wiring.settings import load_settings

    m = load_settings().memory
    if not m.extractor_model:
        raise typer.BadParameter(
            "set ATTUNE_MEMORY__EXTRACTOR_MODEL (and _BASE_URL) to an OpenAI-compatible model",
            param_hint="--with-model",
        )
    detector = make_detector(
        "llm",
        base_url=m.extractor_base_url,
        model=m.extractor_model,
        api_key=m.extractor_api_key,
        prompt_template=PromptLibrary().source("instruction_detect", "v1"),
    )
    assert detector is not None
    return lambda text: asyncio.run(detector(text))
