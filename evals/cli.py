"""``attune eval``: regression suites and benchmarks, run from the command line.

Mounted on the ``attune`` CLI with ``app.add_typer(eval_app, name="eval")``; also runnable
as ``python -m evals.cli``. Each command works in a fresh data directory (a temporary one
unless ``--data-dir`` is given) and never touches ``ATTUNE_DATA_DIR``; retrieval settings
under test come from the usual ``ATTUNE_MEMORY__*`` variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evals.cli_instructions import instructions
from evals.cli_locomo import LOCOMO_HELP, locomo
from evals.cli_replay import replay
from evals.cli_runs import compare, list_suites, report, runs
from evals.cli_support import (
    DataDir,
    JsonOut,
    model_settings,
    paragraphs,
    settings_for,
    workdir,
    write_json,
)

eval_app = typer.Typer(
    help="Regression suites and benchmarks: quality and speed figures, printed as a table "
    "and optionally saved as JSON. Each run uses a fresh data directory; each suite's run is "
    "stored (its id printed) for `compare` and `report`.",
    no_args_is_help=True,
    add_completion=False,
)
eval_app.command("locomo", help=LOCOMO_HELP)(locomo)
eval_app.command("instructions")(instructions)
eval_app.command("list")(list_suites)
eval_app.command("runs")(runs)
eval_app.command("compare")(compare)
eval_app.command("report")(report)
eval_app.command("replay")(replay)

MEMORY_HELP = paragraphs(
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
BENCH_HELP = paragraphs(
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
    from evals.suites.memory.data import DATA_PATH, load
    from evals.suites.memory.suite import run_memory_eval

    data = load(dataset or DATA_PATH)
    with workdir(data_dir) as work:
        report = run_memory_eval(
            settings_for(work),
            dataset=data,
            limit_questions=limit,
            distill=distill,
            sweep=sweep,
            progress=True,
        )
    write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())
    from evals.suites import memory_run, record

    record(memory_run(report, data.questions[:limit], data.version))


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
    from evals.bench.memory import bench_retrieval

    try:
        counts = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError as e:
        raise typer.BadParameter("use integers separated by commas", param_hint="--sizes") from e
    if not counts or min(counts) < 1:
        raise typer.BadParameter("give at least one positive size", param_hint="--sizes")
    with workdir(data_dir) as work:
        report = bench_retrieval(
            counts,
            queries,
            settings=settings_for(work),
            pool=pool,
            import_turns=import_turns,
            progress=True,
        )
    write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())


ADAPTERS_HELP = paragraphs(
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
    from evals.suites.adapters.suite import pick_users, run_adapters_eval

    try:
        chosen = pick_users(users)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--users") from e
    model_dir = resolve_model_dir(model_settings())  # the configured base model and cache
    with workdir(data_dir) as work:
        report = run_adapters_eval(
            model_dir,
            work,
            users=chosen,
            device=device,
            dpo_pairs=dpo_pairs,
            progress=True,
        )
    write_json(json_path, report.as_dict())  # first: the figures survive a display bug
    typer.echo(report.table())
    from evals.suites import adapters_run, record

    record(adapters_run(report))


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

    from evals.suites.preferences.suite import SPLITS, run

    if vectors not in ("deferred", "inline"):
        raise typer.BadParameter("deferred or inline", param_hint="--vectors")
    unknown = sorted(set(split or ()) - set(SPLITS))
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}; one of {list(SPLITS)}", param_hint="--split")
    chosen = [s for s in SPLITS if s in (split or SPLITS)]
    with workdir(data_dir) as work:
        settings = settings_for(work)
        settings = settings.model_copy(
            update={
                "model": model_settings(),
                "memory": settings.memory.model_copy(update={"import_dense": vectors}),
            }
        )
        report = asyncio.run(run(settings, users=users, progress=True, splits=chosen))
    write_json(json_path, report.as_dict())
    typer.echo(report.table())
    from evals.suites import preferences_run, record

    record(
        preferences_run(
            report,
            f"preference topics ({', '.join(chosen)}), {users} users per split",
            {"memory": settings.memory.model_dump(mode="json"), "vectors": vectors},
        )
    )


@eval_app.command("persona")
def persona(json_path: JsonOut = None) -> None:
    """Token cost of the composed system prompt for 50 facts and 10 standing instructions.

    Counted with the base model's tokenizer: the bare prompt, the profile alone, the
    profile with memories under the default memory budget, and with all 50 facts.
    """
    from evals.suites.persona.suite import report, run

    result = run(model_settings())
    write_json(json_path, result)
    typer.echo(report(result))
    from evals.suites import persona_run, record

    record(persona_run(result))


if __name__ == "__main__":
    eval_app()
