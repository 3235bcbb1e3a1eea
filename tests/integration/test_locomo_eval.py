"""The LoCoMo eval on a slice: one conversation's first sessions, real indexes and MiniLM.

Behaviour only (the harness imports, searches and scores every system); the quality
figures live in ``attune eval locomo``'s output. The data is read from ``shared/`` beside
the project, never from the repository; without it these tests are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.suites import locomo_run
from evals.suites.locomo.baselines import BASELINES, BM25
from evals.suites.locomo.data import CATEGORIES, load
from evals.suites.locomo.suite import KS, RERANK_HELD_OUT, run_locomo_eval
from memory.records import db
from memory.service import MemoryService
from tests.conftest import shared_embedder
from wiring.services import build_memory
from wiring.settings import Settings

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo-dev"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no LoCoMo data at {DATA}")


@pytest.fixture
def memory(settings: Settings) -> Iterator[MemoryService]:
    engine = db.open_engine(settings.db)
    try:
        yield build_memory(settings, engine, shared_embedder())
    finally:
        engine.dispose()


@needs_data
def test_a_slice_is_imported_as_the_http_route_does_and_every_system_is_scored(
    memory: MemoryService,
) -> None:
    convs = load(DATA, conversations=1, max_sessions=2)
    conv = convs[0]
    assert conv.questions, "the first sessions hold the evidence of some questions"
    ids = {t.id for t in conv.turns}
    assert all(set(q.evidence) <= ids for q in conv.questions)
    roles = {t.speaker: t.role for s in conv.sessions for t in s.turns}
    assert roles == {conv.speakers[0]: "user", conv.speakers[1]: "assistant"}

    report = run_locomo_eval(memory, convs, sweep=False)

    assert report.ingest["turns"] == len(conv.turns)
    names = set(report.systems)
    assert {f"baseline {b}" for b in BASELINES} <= names
    assert "attune (defaults, right after import)" in names
    for scores in report.systems.values():
        assert len(scores.per_question) == len(conv.questions)
        means = [scores.mean(k) or 0.0 for k in KS]
        assert all(0.0 <= m <= 1.0 for m in means)
        assert means == sorted(means)  # recall never falls as k grows
    assert report.systems["attune (defaults, right after import)"].mean(20)  # finds some
    run = locomo_run(report, "slice", {"k": 20})  # as a stored run: one case per question
    assert len(run.cases) == len(conv.questions) == len({c.id for c in run.cases})
    head = report.systems["attune (defaults, right after import)"]
    assert run.aggregates["recall@10"] == pytest.approx(head.mean(10))
    assert all("baseline bm25 recall@10" in c.metrics for c in run.cases)
    figures = report.as_dict()["systems"]["baseline rrf"]
    assert set(figures["by_category"]) == set(CATEGORIES.values())
    assert "baseline bm25" in report.table()


@needs_data
def test_leave_one_conversation_out_chooses_each_setting_on_the_others(
    memory: MemoryService,
) -> None:
    convs = load(DATA, conversations=2, max_sessions=1)
    report = run_locomo_eval(memory, convs, sweep=True)
    assert set(report.chosen) == {c.key for c in convs}
    held_out = report.systems["attune (held-out: setting chosen on other convs)"]
    assert len(held_out.per_question) == sum(len(c.questions) for c in convs)
    refit = report.systems[RERANK_HELD_OUT]  # the reranker fitted without the conversation
    assert len(refit.per_question) == len(held_out.per_question)
    assert "reranker refit" in report.table()


def test_bm25_ranks_rare_shared_terms_first() -> None:
    index = BM25(["the cat sat", "the dog ran far", "a heron by the pond"])
    scores = index.scores("where is the heron")
    assert max(range(3), key=lambda i: scores[i]) == 2
    assert index.scores("zebra") == [0.0, 0.0, 0.0]
