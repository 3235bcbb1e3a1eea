"""``attune eval locomo``: evidence recall on LoCoMo conversations, and answer accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from evals.cli_support import DataDir, JsonOut, paragraphs, settings_for, workdir, write_json

LOCOMO_HELP = paragraphs(
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
    (``evals.suites.locomo.answers``); the endpoints' API key, if any, is read from the
    ``ATTUNE_EVAL_API_KEY`` environment variable.
    """
    from evals.suites.locomo.data import load
    from evals.suites.locomo.suite import run_locomo_eval

    if (answer_url is None) != (answer_model is None):
        raise typer.BadParameter("give both --answer-url and --answer-model, or neither")
    convs = load(data, conversations=conversations, max_sessions=sessions)
    with workdir(data_dir) as work:
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
    write_json(json_path, figures)  # first: the figures survive a display bug
    typer.echo(report.table())
    from evals.suites import locomo_run, record

    retrieval = memory.settings.model_dump(mode="json")
    record(locomo_run(report, dataset_version(data, convs), retrieval))
    if answers is not None:
        typer.echo(answers.table())


def dataset_version(data: Path, convs: Any) -> str:
    """The folder's name, what was scored of it, and a hash of its files' bytes."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(data.glob("*.json")):
        digest.update(path.name.encode() + path.read_bytes())
    sessions = sum(len(c.sessions) for c in convs)
    scored = f"{len(convs)} conversations, {sessions} sessions"
    return f"{data.name}@{digest.hexdigest()[:10]} ({scored})"


def _answer_accuracy(
    memory: Any,
    report: Any,
    answerer: tuple[str, str],
    judge: tuple[str, str],
    *,
    k: int,
    limit: int | None,
) -> Any:
    """Answer accuracy over the report's questions (``evals.suites.locomo.answers``)."""
    import os

    from tqdm import tqdm

    from evals.suites.locomo.answers import judge_questions
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

    settings = settings_for(work)
    return build_memory(settings, db.open_engine(settings.db))
