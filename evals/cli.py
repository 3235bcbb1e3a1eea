"""``attune eval``: regression suites and benchmarks, run from the command line.

Mounted on the ``attune`` CLI with ``app.add_typer(eval_app, name="eval")``; also runnable
as ``python -m evals.cli``. Each command works in a fresh data directory (a temporary one
unless ``--data-dir`` is given) and never touches ``ATTUNE_DATA_DIR``; retrieval settings
under test come from the usual ``ATTUNE_MEMORY__*`` variables.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from wiring.settings import Settings

eval_app = typer.Typer(
    help="Regression suites and benchmarks: quality and speed figures, printed as a table "
    "and optionally saved as JSON. Each run uses a fresh data directory.",
    no_args_is_help=True,
    add_completion=False,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Work here instead of in a temporary directory (kept afterwards). Use an empty "
        "directory: a re-run on the same one imports nothing new.",
    ),
]
JsonOut = Annotated[
    Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
]


def _settings(data_dir: Path) -> Settings:
    """Settings for a run: the environment's retrieval settings, stores in ``data_dir``."""
    from wiring.settings import load_settings

    base = load_settings()  # offline mode, telemetry off, logging
    return Settings(
        data_dir=data_dir,
        admin_key="eval",
        log_level=base.log_level,
        db={"url": None},
        memory={"vector_url": None, "vector_path": None},
    )


def _paragraphs(text: str) -> str:
    """Join each paragraph's lines: Typer's rich help keeps single line breaks."""
    return "\n\n".join(" ".join(p.split()) for p in text.strip().split("\n\n"))


MEMORY_HELP = _paragraphs(
    """
Score memory retrieval on the synthetic multi-session dataset.

Imports every user's history (as POST /v1/users/{id}/history does), then asks each
question in three modes: hybrid and its two single-retriever baselines, dense and
lexical, in the same run. Prints recall@5/10/20 of the gold source turns (episodic
memories, then all kinds), hybrid's margin over the better baseline at @10 with a
paired-bootstrap interval, recall@10 per question category, search latency p50/p95,
import throughput, and (unless --no-sweep) recall@10 under what-if fusion settings.
"""
)
BENCH_HELP = _paragraphs(
    """
Time history import (turns/s) and search latency as a user's memories grow.

First imports IMPORT_TURNS turns through the real import path twice: vectors written
before the call returns, and deferred to the background (timed until the call returns and
until every vector is written). Then loads one user with each size of memories in turn and
times hybrid, dense and lexical search (p50/p95 milliseconds, query embedding
included). Beyond --pool, memories reuse real vectors with noise and are written
straight through the index protocols; the output says so.
"""
)


@contextmanager
def _workdir(data_dir: Path | None) -> Iterator[Path]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="attune-eval-") as tmp:
        yield Path(tmp)


def _write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        typer.echo(f"figures written to {path}", err=True)


@eval_app.command("memory", help=MEMORY_HELP)
def memory(
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="Ask only the first N questions (all users are still imported)."
        ),
    ] = None,
    json_path: JsonOut = None,
    data_dir: DataDir = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="Dataset file (default: the versioned evals/data/memory_v1.json)."),
    ] = None,
    distill: Annotated[
        bool,
        typer.Option(help="Distill semantic memories too (needed for the all-kinds line)."),
    ] = True,
    sweep: Annotated[
        bool,
        typer.Option(
            help="Also score what-if fusion settings (rrf_k, weights, fetch_k, "
            "lexical without stopwords), chosen on half the users, reported on the "
            "other half."
        ),
    ] = True,
) -> None:
    """Score memory retrieval on the synthetic dataset (see ``MEMORY_HELP``)."""
    from evals.memory_data import DATA_PATH, load
    from evals.memory_eval import run_memory_eval

    data = load(dataset or DATA_PATH)
    with _workdir(data_dir) as work:
        report = run_memory_eval(
            _settings(work),
            dataset=data,
            limit_questions=limit,
            distill=distill,
            sweep=sweep,
            progress=True,
        )
    _write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())


@eval_app.command("retrieval-bench", help=BENCH_HELP)
def retrieval_bench(
    sizes: Annotated[
        str, typer.Option(help="Memory counts for one user, comma-separated, measured in turn.")
    ] = "1000,10000,100000",
    queries: Annotated[int, typer.Option(min=1, help="Searches per mode at each size.")] = 200,
    pool: Annotated[
        int,
        typer.Option(
            min=1,
            help="Distinct texts embedded for real; larger sizes reuse their "
            "vectors with small noise (embedding 100k texts takes minutes on 2 cores).",
        ),
    ] = 5_000,
    import_turns: Annotated[
        int, typer.Option(min=1, help="Turns in the timed history import.")
    ] = 2_000,
    json_path: JsonOut = None,
    data_dir: DataDir = None,
) -> None:
    """Time history import and search latency by size (see ``BENCH_HELP``)."""
    from evals.memory_bench import bench_retrieval

    try:
        counts = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError as e:
        raise typer.BadParameter("use integers separated by commas", param_hint="--sizes") from e
    if not counts or min(counts) < 1:
        raise typer.BadParameter("give at least one positive size", param_hint="--sizes")
    with _workdir(data_dir) as work:
        report = bench_retrieval(
            counts,
            queries,
            settings=_settings(work),
            pool=pool,
            import_turns=import_turns,
            progress=True,
        )
    _write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())


LOCOMO_HELP = _paragraphs(
    """
Evidence recall on LoCoMo conversations, driven as the held-out evaluation drives Attune.

Each conversation in DIR (*.json) becomes a fresh user; its sessions are imported as
POST /v1/users/{id}/history does, and each question of categories 1-4 is searched at once
(k=20; the harness does not wait for deferred vectors, the search itself waits for that
user's up to ATTUNE_MEMORY__VECTOR_WAIT_S), then again once every vector is written. Prints
recall@5/10/20 overall, recall@10 per category and per conversation, beside BM25, MiniLM
dense and reciprocal-rank-fusion baselines over "<speaker> (<date>): <text>" computed in
the same run, and a leave-one-conversation-out line: each conversation scored with the
search setting chosen on the other ones (the figure nothing was tuned on).

With --answer-url and --answer-model (any OpenAI-compatible endpoint; a key, if needed, in
ATTUNE_EVAL_API_KEY) it also prints answer accuracy: each question answered from the top
--answer-k memories, graded CORRECT or WRONG against the gold answer by the judge
(--judge-url, --judge-model; default the answering model), overall and per category.
"""
)


@eval_app.command("locomo", help=LOCOMO_HELP)
def locomo(
    data: Annotated[
        Path,
        typer.Option(
            "--data", exists=True, file_okay=False, help="A LoCoMo folder (shared/data/locomo-dev)."
        ),
    ],
    conversations: Annotated[
        int | None, typer.Option(min=1, help="Only the first N conversations (by file name).")
    ] = None,
    sessions: Annotated[
        int | None, typer.Option(min=1, help="Only each conversation's first N sessions.")
    ] = None,
    sweep: Annotated[
        bool, typer.Option(help="Also score the leave-one-conversation-out line.")
    ] = True,
    answer_url: Annotated[
        str | None,
        typer.Option(
            help="Also score answer accuracy: an OpenAI-compatible endpoint (…/v1) that "
            "answers each question from the top --answer-k memories."
        ),
    ] = None,
    answer_model: Annotated[
        str | None, typer.Option(help="The answering model's name at --answer-url.")
    ] = None,
    judge_url: Annotated[
        str | None, typer.Option(help="The judge's endpoint (default: --answer-url).")
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="The judge model's name (default: --answer-model).")
    ] = None,
    answer_k: Annotated[int, typer.Option(min=1, max=20, help="Memories per answer.")] = 10,
    answer_limit: Annotated[
        int | None, typer.Option(min=1, help="Answer only the first N questions.")
    ] = None,
    json_path: JsonOut = None,
    data_dir: DataDir = None,
) -> None:
    """Score LoCoMo evidence recall (see ``LOCOMO_HELP``).

    With ``--answer-url`` and ``--answer-model``, also answer accuracy
    (``evals.locomo_answers``); the endpoints' API key, if any, is read from the
    ``ATTUNE_EVAL_API_KEY`` environment variable.
    """
    from evals.locomo_data import load
    from evals.locomo_eval import run_locomo_eval

    if (answer_url is None) != (answer_model is None):
        raise typer.BadParameter("give both --answer-url and --answer-model, or neither")
    convs = load(data, conversations=conversations, max_sessions=sessions)
    with _workdir(data_dir) as work:
        memory = _memory_service(work)
        report = run_locomo_eval(memory, convs, sweep=sweep)
        figures = report.as_dict()
        answers = None
        if answer_url is not None and answer_model is not None:
            answers = _answer_accuracy(
                memory,
                report,
                (answer_url, answer_model),
                (judge_url or answer_url, judge_model or answer_model),
                k=answer_k,
                limit=answer_limit,
            )
            figures["answers"] = answers.as_dict()
    _write_json(json_path, figures)  # first: the figures survive a display bug
    typer.echo(report.table())
    if answers is not None:
        typer.echo(answers.table())


def _answer_accuracy(
    memory: Any,
    report: Any,
    answerer: tuple[str, str],
    judge: tuple[str, str],
    *,
    k: int,
    limit: int | None,
) -> Any:
    """Answer accuracy over the report's questions (``evals.locomo_answers``)."""
    import os

    from tqdm import tqdm

    from evals.locomo_answers import judge_questions
    from memory.extraction.llm import openai_chat

    key = os.environ.get("ATTUNE_EVAL_API_KEY")
    models = [
        openai_chat(base_url=url, model=name, api_key=key, timeout=120.0, max_retries=2)
        for url, name in (answerer, judge)
    ]
    questions = report.questions[:limit]
    with tqdm(total=len(questions), desc="answers", unit="q") as bar:

        def tick(_done: int) -> None:
            bar.update(1)

        return judge_questions(
            questions,
            lambda q: memory.search(report.user_ids[q.conversation], q.text, k=k),
            answer_model=models[0],
            judge_model=models[1],
            names=(answerer[1], judge[1]),
            k=k,
            progress=tick,
        )


def _memory_service(work: Path) -> Any:
    """The memory service every entry point builds, over a fresh store in ``work``."""
    from memory.records import db
    from wiring.services import build_memory

    settings = _settings(work)
    return build_memory(settings, db.open_engine(settings.db))


ADAPTERS_HELP = _paragraphs(
    """
Train and score per-user LoRA adapters on synthetic users with distinctive styles.

For each user (terse, pirate, emoji, formal): a scrubbed dataset snapshot, an SFT job and
a DPO job on the configured base model, then on held-out questions the style perplexity
vs the base model (target at least 20% lower), the general-text perplexity change
(target under 3% higher), DPO preference accuracy before and after, the gate's verdict
and each job's wall time (target: DPO on 32 pairs under 5 minutes on a CPU).
"""
)


@eval_app.command("adapters", help=ADAPTERS_HELP)
def adapters(
    users: Annotated[
        str | None, typer.Option(help="Comma-separated users (default: all four).")
    ] = None,
    dpo_pairs: Annotated[int, typer.Option(min=2, help="Training pairs per DPO job.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    json_path: JsonOut = None,
    data_dir: DataDir = None,
) -> None:
    """Train and score per-user adapters (see ``ADAPTERS_HELP``)."""
    from adapters.model_store import resolve_model_dir
    from evals.adapters_eval import pick_users, run_adapters_eval

    try:
        chosen = pick_users(users)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--users") from e
    model_dir = resolve_model_dir(_model_settings())  # the configured base model and cache
    with _workdir(data_dir) as work:
        report = run_adapters_eval(
            model_dir,
            work,
            users=chosen,
            device=device,
            dpo_pairs=dpo_pairs,
            progress=True,
        )
    _write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())


def _model_settings() -> Any:
    """The environment's model settings (the base model to train on)."""
    from wiring.settings import load_settings

    return load_settings().model


@eval_app.command("instructions")
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
    from evals.instructions_eval import ALL_CASES, Detector, load_cases, report, score
    from memory.persona.instructions import detect_instructions

    detect: Detector = detect_instructions
    if with_model:
        detect = _model_detector()
    elif detector == "classifier":
        detect = _classifier_detector()
    elif detector != "rules":
        raise typer.BadParameter("rules or classifier", param_hint="--detector")

    if synthetic:
        from evals.instructions_synthetic import synthetic_cases

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
    _write_json(json_path, figures)
    for name, cases in sets.items():
        typer.echo(f"== {name} (detector: {'llm' if with_model else detector})")
        typer.echo(report(cases, detect=detect))


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


@eval_app.command("preferences")
def preferences(
    users: Annotated[int, typer.Option(min=1, help="Synthetic users per split.")] = 2,
    vectors: Annotated[
        str,
        typer.Option(help="How the import writes vectors: deferred (the default) or inline."),
    ] = "deferred",
    split: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this split (repeatable): report, seen3, seen2, seen, tune; default all."
        ),
    ] = None,
    json_path: JsonOut = None,
    data_dir: DataDir = None,
) -> None:
    """Preference surfacing on the prompt preview, straight after a history import.

    Each user states 20 preferences once among ~340 turns of ordinary chat, imported in one
    request; each of 20 questions is previewed at once, then again once vectors and
    distillation are done. Prints the share whose preference is in the composed system
    prompt and the prompt's length in words: the report split (held-out topics, phrasings,
    chats and users) first, the tune split beside it.
    """
    import asyncio

    from evals.preference_eval import SPLITS, run

    if vectors not in ("deferred", "inline"):
        raise typer.BadParameter("deferred or inline", param_hint="--vectors")
    unknown = sorted(set(split or ()) - set(SPLITS))
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}; one of {list(SPLITS)}", param_hint="--split")
    chosen = [s for s in SPLITS if s in (split or SPLITS)]
    with _workdir(data_dir) as work:
        settings = _settings(work)
        settings = settings.model_copy(
            update={
                "model": _model_settings(),
                "memory": settings.memory.model_copy(update={"import_dense": vectors}),
            }
        )
        report = asyncio.run(run(settings, users=users, progress=True, splits=chosen))
    _write_json(json_path, report.as_dict())
    typer.echo(report.table())


@eval_app.command("persona")
def persona(json_path: JsonOut = None) -> None:
    """Token cost of the composed system prompt for 50 facts and 10 standing instructions.

    Counted with the base model's tokenizer: the bare prompt, the profile alone, the
    profile with memories under the default memory budget, and with all 50 facts.
    """
    from evals.persona_eval import report, run

    result = run(_model_settings())
    _write_json(json_path, result)
    typer.echo(report(result))


if __name__ == "__main__":
    eval_app()
