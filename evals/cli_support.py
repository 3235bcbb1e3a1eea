"""What the ``attune eval`` commands share: options, settings, a work directory, JSON out."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from wiring.settings import Settings

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


def settings_for(data_dir: Path) -> Settings:
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


def paragraphs(text: str) -> str:
    """Join each paragraph's lines: Typer's rich help keeps single line breaks."""
    return "\n\n".join(" ".join(p.split()) for p in text.strip().split("\n\n"))


@contextmanager
def workdir(data_dir: Path | None) -> Iterator[Path]:
    """``data_dir`` (created), or a temporary directory removed afterwards."""
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="attune-eval-") as tmp:
        yield Path(tmp)


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as JSON, when a path is given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        typer.echo(f"figures written to {path}", err=True)


def model_settings() -> Any:
    """The environment's model settings (the base model to train on)."""
    from wiring.settings import load_settings

    return load_settings().model
