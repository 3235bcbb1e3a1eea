"""Imports point one way: api, workers and evals → the root (wiring) → graph → the rest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package → packages it must never import (at module level or inside a function)
FORBIDDEN = {
    "graph": {"api", "workers", "evals", "wiring"},
    "memory": {"api", "workers", "evals", "wiring", "graph", "adapters", "tools"},
    "adapters": {"api", "workers", "evals", "wiring", "graph"},
    "tools": {"api", "workers", "evals", "wiring"},
    "workers": {"api", "evals"},
    "evals": {"api"},
    "wiring": {"api", "evals"},
}
# Alembic's environment registers every table of the one schema, the adapters' included.
EXEMPT = {"memory/migrations/env.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if str(path.relative_to(ROOT)) not in EXEMPT
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


def test_workers_reach_the_root_only_inside_functions() -> None:
    # The root's stack imports workers; workers may use the root only lazily (no cycle).
    for path in (ROOT / "workers").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in top if m.split(".")[0] == "wiring"], path
