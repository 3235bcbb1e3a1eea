"""The memory eval on a small slice, with the real embedder, Chroma and full-text index.

Behaviour only: the quality figures themselves live in ``attune eval memory``'s output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from sqlmodel import Session, func, select

from api.protocol_memory import HistoryImport
from evals.runs import load as load_run
from evals.runs import save
from evals.suites import memory_run
from evals.suites.memory.data import DATA_PATH, generate, load
from evals.suites.memory.suite import KIND_SETS, KS, MODES, import_dataset, run_memory_eval
from memory.records.db import open_engine
from memory.records.tables import Memory
from tests.conftest import shared_embedder
from wiring.services import build_memory
from wiring.settings import Settings


def test_the_versioned_dataset_matches_its_generator_and_the_http_shape() -> None:
    data = load()
    assert data.to_json() == generate().to_json(), "run: python -m evals.suites.memory.data --write"
    assert DATA_PATH.stat().st_size < 2_000_000
    assert len(data.users) >= 8 and len(data.questions) >= 300
    assert {"current", "past", "lexical", "multi"} <= {q.category for q in data.questions}
    turns = {t.id: t for u in data.users for t in u.turns()}
    for q in data.questions:
        assert q.gold and all(turns[g].role == "user" and g.startswith(q.user) for g in q.gold)
    body = HistoryImport.model_validate(data.users[0].to_history_body())
    assert sum(len(s.turns) for s in body.sessions) == len(data.users[0].turns())


def test_eval_slice_reports_every_mode_and_reimport_is_idempotent(settings: Settings) -> None:
    two_users = load().subset(users=2)
    # Every third question: both users and every category, at a third of the searches.
    data = replace(two_users, questions=two_users.questions[::3])
    report = run_memory_eval(
        settings, dataset=data, limit_questions=40, embedder=shared_embedder(), sweep=True
    )

    assert report.counts["questions"] == len(data.questions) <= 40
    assert report.counts["turns_imported"] == sum(len(u.turns()) for u in data.users)
    assert report.ingest["import_turns_per_s"] is not None
    assert {(r.kinds, r.mode) for r in report.results} == {(k, m) for k in KIND_SETS for m in MODES}
    for r in report.results:
        assert set(r.recall) == set(KS)
        assert all(0.0 <= v <= 1.0 for v in r.recall.values())
        assert r.recall[5] <= r.recall[10] <= r.recall[20]
        assert 0 < r.latency_ms["p50"] <= r.latency_ms["p95"]
    assert report.result("episodic", "hybrid").recall[20] >= 0.5
    assert set(report.margins) == set(KIND_SETS)
    assert report.config["embedder_model_id"] and report.config["dataset_version"] == data.version
    # As a stored run: one case per question, ids stable, figures the report's own.
    run = load_run(save(memory_run(report, data.questions[:40], data.version)).id)
    assert [c.id for c in run.cases] == [q.id for q in data.questions[:40]]
    head = report.result("episodic", "hybrid")
    assert run.aggregates["recall@10"] == head.recall[10]
    assert [c.metrics["recall@10"] for c in run.cases] == [p[10] for p in head.per_question]
    assert run.dataset == data.version and run.settings["memory"]
    assert report.sweep is not None
    current = report.sweep["rows"][0]
    # The sweep re-fuses rankings offline; with the service's own settings it must agree.
    assert current["recall@10"] == round(report.result("episodic", "hybrid").recall[10], 4)
    assert "hybrid" in report.table() and "what-if fusion" in report.table()
    json.dumps(report.as_dict())

    engine = open_engine(settings.db)
    try:
        memory = build_memory(settings, engine, shared_embedder())
        with Session(engine) as session:
            before = session.exec(select(func.count()).select_from(Memory)).one()
        vectors_before = {k: memory.vectors.count(u) for k, u in report.user_ids.items()}
        again = import_dataset(engine, memory, data)
        with Session(engine) as session:
            after = session.exec(select(func.count()).select_from(Memory)).one()
        assert again.user_ids == report.user_ids
        assert (again.turns_imported, again.turns_skipped) == (0, report.counts["turns"])
        assert after == before
        assert {k: memory.vectors.count(u) for k, u in again.user_ids.items()} == vectors_before
    finally:
        engine.dispose()


def test_eval_cli_help_explains_the_commands() -> None:
    for command, expect in (
        ([], "benchmarks"),
        (["memory"], "recall"),
        (["retrieval-bench"], "p95"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "evals.cli", *command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert expect in out.stdout
