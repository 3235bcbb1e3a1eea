"""The ``attune`` command line: serve, chat, manage users, prepare the model."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Annotated

import typer

from api.cli_adapters import adapters_app
from api.cli_adapters import train as train_adapter
from api.cli_experiments import experiments_app
from api.cli_prompts import prompts_app
from api.cli_vllm import bench_app, vllm_app
from evals.cli import eval_app
from wiring.settings import load_settings
from workers.cli import beat, jobs_app, worker

app = typer.Typer(
    help="Attune: chat that adapts to each user. Settings come from ATTUNE_* variables "
    "(see README); data lives in ATTUNE_DATA_DIR (default ./.attune).",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(
    help="Create and list users (works on the local database).", no_args_is_help=True
)
model_app = typer.Typer(help="Prepare the base model.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
graph_app = typer.Typer(help="The per-turn graph.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(model_app, name="model")
app.add_typer(db_app, name="db")
app.add_typer(graph_app, name="graph")
app.add_typer(eval_app, name="eval")
app.add_typer(jobs_app, name="jobs")
app.command()(worker)
app.command()(beat)
app.add_typer(prompts_app, name="prompts")
app.add_typer(adapters_app, name="adapters")
app.add_typer(experiments_app, name="experiments")
app.add_typer(vllm_app, name="vllm")
app.add_typer(bench_app, name="bench")
app.command("train")(train_adapter)


def _save_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


@graph_app.command("show")
def graph_show() -> None:
    """Print the turn graph (Mermaid) and each node's prompts with their active versions."""
    from graph.show import describe

    typer.echo(describe(load_settings().graph))


_GRACEFUL_SHUTDOWN_S = 5
"""At a stop, how long ``attune serve`` lets open responses end before cancelling them."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Start the HTTP API (OpenAI-compatible chat at /v1/chat/completions).

    Unless ATTUNE_WORKER__EMBEDDED=false, the same process also runs the Celery worker (in
    threads) on the broker in the data directory: see README, "Workers". SIGTERM or Ctrl-C
    stops it within seconds: open responses get a few seconds to end, and jobs still running
    then go back to the queue and run again after the next start.
    """
    import uvicorn

    from api.app import create_app
    from api.logs import configure_logging, configure_tracing
    from api.services import bootstrap_admin_key
    from memory.records.db import open_engine
    from memory.records.store import RecordStore

    settings = load_settings()
    log_config = configure_logging(settings.log_format, settings.log_level)
    configure_tracing(settings.otel_endpoint)
    engine = open_engine(settings.db)
    key = bootstrap_admin_key(RecordStore(engine), settings)
    engine.dispose()
    if key is not None:
        path = settings.data_dir / "admin.key"
        _save_secret(path, key)
        typer.echo(
            f"Generated the admin key (shown once, also saved to {path}):\n  {key}", err=True
        )
    try:
        uvicorn.run(
            create_app(settings),
            host=host or settings.server.host,
            port=port or settings.server.port,
            log_level=settings.log_level.lower(),
            log_config=log_config,
            # Without it uvicorn waits for every open response (a long stream) to end.
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        )
    finally:
        # Everything is closed; the heap (model, indexes) goes with the process. Collecting
        # it at the interpreter's exit would add seconds to every Ctrl-C.
        gc.freeze()


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="The user's display name.")],
    group: Annotated[str | None, typer.Option(help="Id of the user's group.")] = None,
) -> None:
    """Create a user and print their API key (it is shown only once)."""
    from memory.records import repo
    from memory.records.db import open_engine
    from memory.records.store import RecordStore

    settings = load_settings()
    store = RecordStore(open_engine(settings.db))
    with store.session() as session:
        user, key = repo.create_user(session, name=name, group_id=group)
        session.commit()
    typer.echo(f"user id: {user.id}\napi key: {key}")


@users_app.command("list")
def users_list() -> None:
    """List users (ids and names)."""
    from memory.records import repo
    from memory.records.db import open_engine
    from memory.records.store import RecordStore

    store = RecordStore(open_engine(load_settings().db))
    with store.session() as session:
        for user in repo.list_users(session, limit=10_000):
            typer.echo(f"{user.id}\t{user.name}\t{user.created_at:%Y-%m-%d}")


@users_app.command("bootstrap")
def users_bootstrap(
    name: Annotated[str, typer.Option(help="Name of the first user.")] = "me",
) -> None:
    """Create a first user if there is none, and print how to chat as them."""
    from memory.records import repo
    from memory.records.db import open_engine
    from memory.records.store import RecordStore

    settings = load_settings()
    store = RecordStore(open_engine(settings.db))
    key_file = settings.data_dir / "first_user.key"
    with store.session() as session:
        if repo.count_users(session) == 0:
            _, key = repo.create_user(session, name=name)
            session.commit()
            _save_secret(key_file, key)
        elif key_file.exists():
            key = key_file.read_text(encoding="utf-8").strip()
        else:
            typer.echo("Users exist already; create another with: attune users create NAME")
            return
    port = settings.server.port
    typer.echo(_EXAMPLES.format(key=key, port=port, key_file=key_file))


_EXAMPLES = """
First user's API key (kept in {key_file}):
  {key}

Try it once the server is up:

  curl -s http://127.0.0.1:{port}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "attune", "messages": [{{"role": "user", "content": "Hi! Call me Sam."}}]}}'

  python - <<'PY'
  from openai import OpenAI
  client = OpenAI(base_url="http://127.0.0.1:{port}/v1", api_key="{key}")
  for chunk in client.chat.completions.create(
      model="attune", stream=True,
      messages=[{{"role": "user", "content": "What should I call you?"}}]):
      if chunk.choices:
          print(chunk.choices[0].delta.content or "", end="", flush=True)
  PY

  attune chat --key {key}
"""


@model_app.command("prepare")
def model_prepare() -> None:
    """Convert the bundled SmolLM2 GGUF to a cached safetensors directory (once)."""
    from adapters.model_store import resolve_model_dir

    settings = load_settings()
    path = resolve_model_dir(settings.model)
    typer.echo(f"base model ready: {path}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the record store's schema to the latest revision."""
    from memory.records.db import current_revision, open_engine

    engine = open_engine(load_settings().db)
    typer.echo(f"schema at revision {current_revision(engine)}")


@app.command()
def chat(
    url: Annotated[str, typer.Option(help="Attune server to talk to.")] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None, typer.Option(envvar="ATTUNE_API_KEY", help="A user's API key.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run in-process instead of against a server.")
    ] = False,
    user: Annotated[
        str | None, typer.Option(help="With --local: the user id (default: the first user).")
    ] = None,
    thread: Annotated[str | None, typer.Option(help="Continue this thread id.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 256,
    show_meta: Annotated[
        bool, typer.Option(help="Print the turn id, thread and model target after each reply.")
    ] = False,
) -> None:
    """Chat in the terminal, streaming replies. /new starts a new thread, /quit leaves."""
    from api.chat_cli import chat_local, chat_remote

    settings = load_settings()
    if local:
        asyncio.run(chat_local(settings, user, thread, max_tokens, show_meta))
    else:
        if key is None:
            raise typer.BadParameter("pass --key or set ATTUNE_API_KEY", param_hint="--key")
        chat_remote(url, key, thread, max_tokens, show_meta)


def main() -> None:
    """Console-script entry point: files it creates are private (``wiring.permissions``)."""
    from wiring.permissions import private_umask

    private_umask()
    app()
