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
    from evals.bench.serving import main

    main(list(ctx.args))


@bench_app.command("placement")
def bench_placement(
    users: Annotated[int, typer.Option(min=1, help="Users in the population.")] = 1_000_000,
    groups: Annotated[int, typer.Option(min=1, help="Group adapters.")] = 10_000,
    own_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of users (the most active) with their own.")
    ] = 0.02,
    zipf: Annotated[float, typer.Option(min=0.1, help="Zipf exponent of user activity.")] = 1.0,
    requests: Annotated[int, typer.Option(min=1000, help="Requests simulated.")] = 1_000_000,
    capacities: Annotated[str, typer.Option(help="Adapters per replica, comma-separated.")] = (
        "64,512,2048"
    ),
    replicas: Annotated[str, typer.Option(help="Replica counts, comma-separated.")] = (
        "8,16,32,64,128"
    ),
    rps: Annotated[float, typer.Option(min=1, help="Requests per second to plan for.")] = 1000,
    replica_rps: Annotated[
        float, typer.Option(min=0.1, help="Requests per second one replica serves.")
    ] = 40,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")
    ] = None,
) -> None:
    """Adapter placement at scale, simulated (Zipf users, group adapters, LRU replicas).

    Hit rate, cold loads per second and distinct adapters per batch for affinity routing
    (one home replica per adapter) beside spread routing (round robin), and the replicas
    needed; see evals/bench/placement.py. A simulation: throughput is `attune bench serving`.
    """
    import json

    from evals.bench.placement import Population, plan, table

    def counts(text: str, option: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise typer.BadParameter("comma-separated whole numbers", param_hint=option) from None
        if not values or min(values) < 1:
            raise typer.BadParameter("comma-separated numbers of at least 1", param_hint=option)
        return values

    figures = plan(
        Population(users=users, groups=groups, own_share=own_share, zipf_s=zipf),
        requests=requests,
        capacities=counts(capacities, "--capacities"),
        replica_counts=counts(replicas, "--replicas"),
        rps=rps,
        replica_rps=replica_rps,
    )
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    typer.echo(table(figures))
