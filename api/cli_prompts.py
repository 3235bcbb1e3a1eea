"""``attune prompts``: list, show and diff prompt versions; run the instruction optimizer."""

from __future__ import annotations

import difflib
from typing import Annotated

import typer

from graph.prompts import PromptLibrary, PromptNotFoundError

prompts_app = typer.Typer(
    help="Prompt templates (graph/prompts/<name>/v<N>.md) and learned instruction blocks.",
    no_args_is_help=True,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@prompts_app.command("list")
def list_prompts() -> None:
    """Every prompt, its versions, and the system prompt version turns use now."""
    from wiring.settings import load_settings

    graph = load_settings().graph
    lib = PromptLibrary()
    for name in lib.names():
        active = graph.version_of(name) if name in graph.active_versions() else None
        versions = [f"{v}*" if v == active else v for v in lib.versions(name)]
        typer.echo(f"{name:<22} {' '.join(versions)}")
    typer.echo(
        "(* = active: ATTUNE_GRAPH__PROMPT_VERSION for system, "
        """ATTUNE_GRAPH__PROMPT_VERSIONS='{"name": "vN"}' for any)"""
    )


@prompts_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. system.")],
    version: Annotated[
        str | None, typer.Argument(help="Version, e.g. v2 (default: latest).")
    ] = None,
) -> None:
    """Print a prompt version's template and the variables it uses."""
    lib = PromptLibrary()
    try:
        version = version or lib.versions(name)[-1]
        source = lib.source(name, version)
        variables = sorted(lib.variables(name, version))
    except PromptNotFoundError as exc:
        _fail(f"{exc.args[0]}; `attune prompts list` shows what exists")
        return
    typer.echo(f"# {name} {version}  (variables: {', '.join(variables)})")
    typer.echo(source)


@prompts_app.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. system.")],
    old: Annotated[str, typer.Argument(help="Older version, e.g. v1.")],
    new: Annotated[str, typer.Argument(help="Newer version, e.g. v2.")],
) -> None:
    """Unified diff between two versions of a prompt."""
    lib = PromptLibrary()
    try:
        a, b = lib.source(name, old), lib.source(name, new)
    except PromptNotFoundError as exc:
        _fail(f"{exc.args[0]}; `attune prompts list` shows what exists")
        return
    lines = difflib.unified_diff(
        a.splitlines(keepends=True),
        b.splitlines(keepends=True),
        fromfile=f"{name}/{old}.md",
        tofile=f"{name}/{new}.md",
    )
    typer.echo("".join(lines), nl=False)


@prompts_app.command("optimize")
def optimize(
    user_id: Annotated[str, typer.Argument(help="The user whose instruction block to learn.")],
    margin: Annotated[float, typer.Option(help="Score margin a candidate must win by.")] = 0.02,
    min_examples: Annotated[int, typer.Option(help="Feedback examples needed to try.")] = 3,
) -> None:
    """Propose a new learned instruction block from the user's feedback; activate if better.

    Runs the configured chat model: a critique, a rewrite, then one answer per feedback
    example for the candidate and for the current block (minutes with the local model).
    """
    from rich.console import Console

    from graph.optimizer import optimize_user
    from wiring.services import build_core
    from wiring.settings import load_settings

    console = Console(stderr=True)
    with console.status("loading the memory store"):
        core = build_core(load_settings())
    try:
        with console.status("loading the model"):
            services = core.graph_services()
        with console.status(f"proposing and scoring a block for {user_id}"):
            result = optimize_user(services, user_id, margin=margin, min_examples=min_examples)
    finally:
        core.close()
    typer.echo(f"{result.status}: {result.reason}")
    if result.block is not None:
        typer.echo(f"block {result.block.id} v{result.block.version}:\n{result.block.text}")


@prompts_app.command("try")
def try_version(
    name: Annotated[str, typer.Argument(help="system, extraction or instruction_detect.")],
    version: Annotated[str, typer.Argument(help="The version to try, e.g. v3.")],
    message: Annotated[str, typer.Argument(help="The user's message.")],
    user: Annotated[str, typer.Option("--user", help="Whose context (profile, memories).")],
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Reply length.")] = 128,
) -> None:
    """Render a prompt version against a real user's context and show the model's reply.

    Nothing is recorded: no turn, memory, profile change or job. For ``system`` the turn is
    composed as the graph would compose it now (profile, memories, route) and answered by
    the route's model.
    """
    import asyncio

    from api.prompt_try import TRIABLE, try_prompt
    from memory.records import repo
    from wiring.settings import load_settings
    from wiring.stack import open_stack

    if name not in TRIABLE:
        _fail(f"prompts try runs {', '.join(TRIABLE)}; not {name!r}")
    try:
        PromptLibrary().source(name, version)
    except PromptNotFoundError as exc:
        _fail(f"{exc.args[0]}; `attune prompts list` shows what exists")
    settings = load_settings()
    settings.worker.embedded = False  # nothing runs behind the try
    if name == "system":
        settings.graph.prompt_version = version
    else:
        settings.graph.prompt_versions = {**settings.graph.prompt_versions, name: version}

    async def run() -> None:
        async with open_stack(settings) as stack:
            with stack.store.session() as session:
                if repo.get_user(session, user) is None:
                    _fail(f"no user with id {user!r} (`attune users list`)")
            tried = await try_prompt(stack, name, version, user, message, max_tokens=max_tokens)
        typer.echo(f"# {name} {version} for {user} → {tried.target} (nothing recorded)")
        for m in tried.messages:
            typer.echo(f"--- {m['role']}\n{m['content']}")
        typer.echo(f"--- reply\n{tried.reply}")

    asyncio.run(run())
