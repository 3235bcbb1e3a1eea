"""``attune vllm``: set up vLLM in its own virtual environment and start a server."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from wiring.settings import load_settings

vllm_app = typer.Typer(
    help="vLLM OpenAI-compatible servers for ATTUNE_MODEL__BACKEND=vllm.", no_args_is_help=True
)


@vllm_app.command("setup")
def setup() -> None:
    """Create vLLM's virtual environment once, or check the existing one.

    It lives in ATTUNE_MODEL__VLLM_VENV (default ~/.cache/attune/vllm-venv).
    """
    from adapters.vllm_server import VllmSetupError, ensure_venv, venv_dir

    settings = load_settings()
    try:
        python = ensure_venv(venv_dir(settings.model), echo=typer.echo)
    except VllmSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"vLLM ready: {python}")


@vllm_app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    model: Annotated[
        Path | None,
        typer.Option(help="Base model directory (default: the one the local backend uses)."),
    ] = None,
) -> None:
    """Start a vLLM server with runtime LoRA loading on the base model (sets vLLM up once)."""
    from adapters.model_store import resolve_model_dir
    from adapters.vllm_server import (
        VllmSetupError,
        ensure_venv,
        server_command,
        start,
        stop,
        venv_dir,
        wait_ready,
    )

    settings = load_settings()
    model_dir = (model.expanduser() if model else resolve_model_dir(settings.model)).resolve()
    try:
        python = ensure_venv(venv_dir(settings.model), echo=typer.echo)
    except VllmSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    command = server_command(python, model_dir, settings.model, host=host, port=port)
    process = start(command)
    # SIGTERM (a supervisor stopping us) must stop the server too: it runs in its own
    # process group, so nothing else would.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = f"http://{host}:{port}"
    try:
        wait_ready(url, process)
        typer.echo(
            f"vLLM listens on {url} (model {model_dir}, LoRA loading at runtime).\n"
            "Point Attune at it:\n"
            f"  ATTUNE_MODEL__BACKEND=vllm ATTUNE_MODEL__VLLM_URLS={url} attune serve\n"
            "Ctrl-C stops it.",
            err=True,
        )
        process.wait()
    except VllmSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        stop(process)


bench_app = typer.Typer(help="Benchmarks that need servers.", no_args_is_help=True)


@bench_app.command(
    "serving", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_serving(ctx: typer.Context) -> None:
    """Throughput through vLLM, base vs distinct adapters (options: attune bench serving -- -h)."""
    from evals.bench_serving import main

    main(list(ctx.args))
