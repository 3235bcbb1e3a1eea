"""Stored eval runs: every ``attune eval`` suite saves what it measured, case by case.

A run is one JSON file, ``<runs dir>/<run id>.json`` (``ATTUNE_EVAL_RUNS_DIR``, default
``<data dir>/eval-runs``), so runs can be listed, copied between machines and kept beside
a release. It records what a later comparison needs to be fair and what it needs to say
why two runs differ: the suite, the dataset's version, the commit, the prompt versions and
the settings that matter, the aggregate figures, and one result per case with the same case
ids run after run (``evals.compare`` pairs cases by id).

Each case has numeric ``metrics`` and a ``passed`` verdict chosen by its suite (a memory
question passes when every piece of its evidence is in the top 10; an instruction case
when nothing was missed or wrongly detected; a preference question when it surfaced):
a case whose verdict changed between two runs is a flip.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


class RunNotFoundError(LookupError):
    """No stored run has the id asked for."""


@dataclass
class CaseResult:
    """One case of a run: its id (stable across runs), metrics and verdict."""

    id: str
    metrics: dict[str, float]
    passed: bool
    detail: str = ""
    """What a person reads in a report: the question, the phrasing, what went wrong."""


@dataclass
class EvalRun:
    """What one run of a suite measured, and under which conditions."""

    suite: str
    dataset: str
    aggregates: dict[str, float]
    cases: list[CaseResult]
    primary: str
    """The metric ``compare --fail-on-regression`` watches (a key of ``aggregates`` and of
    each case's ``metrics``)."""
    lower_is_better: bool = False
    """The primary metric improves as it falls (tokens, seconds)."""
    settings: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    adapters: dict[str, str] = field(default_factory=dict)
    commit: str = ""
    created_at: str = ""
    id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The run as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRun:
        """A run read back from :meth:`as_dict`'s output."""
        cases = [CaseResult(**c) for c in data.get("cases", [])]
        return cls(**{**data, "cases": cases})


def runs_dir(data_dir: Path | None = None) -> Path:
    """Where runs are stored: ``ATTUNE_EVAL_RUNS_DIR``, else ``<data dir>/eval-runs``."""
    configured = os.environ.get("ATTUNE_EVAL_RUNS_DIR")
    if configured:
        return Path(configured).expanduser()
    if data_dir is None:
        from wiring.settings import load_settings

        data_dir = load_settings().data_dir
    return data_dir / "eval-runs"


def current_commit() -> str:
    """The checkout's commit (``-dirty`` when it has uncommitted changes), or ``unknown``."""
    root = str(Path(__file__).resolve().parents[1])

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", root, *args], capture_output=True, text=True, check=True, timeout=10
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def save(run: EvalRun, directory: Path | None = None) -> EvalRun:
    """Give ``run`` an id, its time and the commit, and write it; returns it."""
    now = datetime.now(UTC)
    run.created_at = run.created_at or now.isoformat(timespec="seconds")
    run.commit = run.commit or current_commit()
    run.id = run.id or f"{run.suite}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    target = directory or runs_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{run.id}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run.as_dict(), indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return run


def load(run_id: str, directory: Path | None = None) -> EvalRun:
    """The stored run ``run_id``.

    Raises:
        RunNotFoundError: No such run (the message says where runs were looked for).
    """
    target = directory or runs_dir()
    path = target / f"{run_id}.json"
    if not run_id or not set(run_id) <= RUN_ID_CHARS or not path.is_file():
        known = ", ".join(r.id for r in list_runs(target)[:5]) or "none stored yet"
        raise RunNotFoundError(
            f"no eval run {run_id!r} in {target} (latest: {known}; `attune eval runs` lists them)"
        )
    return EvalRun.from_dict(json.loads(path.read_text(encoding="utf-8")))


def load_file(path: Path) -> EvalRun:
    """A run from a file (a baseline kept beside the code, or a copied run).

    Raises:
        RunNotFoundError: No such file, or it holds no run.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return EvalRun.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise RunNotFoundError(f"{path} holds no eval run ({e})") from None


def list_runs(directory: Path | None = None, *, suite: str | None = None) -> list[EvalRun]:
    """Stored runs, newest first (of one ``suite``, if given)."""
    target = directory or runs_dir()
    if not target.is_dir():
        return []
    runs = []
    for path in target.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                continue  # not a run file
            run = EvalRun.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError):
            continue  # not a run file
        if suite is None or run.suite == suite:
            runs.append(run)
    return sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)
