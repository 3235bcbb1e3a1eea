"""The preference-surfacing suite: its data splits and a small slice run end to end."""

from __future__ import annotations

from evals.suites import preferences_run
from evals.suites.preferences.data import chats, holds, make_user, topics
from evals.suites.preferences.suite import WORD_LIMIT, run
from wiring.settings import Settings


def test_tune_and_report_share_no_topic_phrasing_chat_or_user() -> None:
    tune, report = topics("tune"), topics("report")
    assert len(tune) == len(report) == 20
    for other in (tune, topics("seen"), topics("seen2"), topics("seen3")):
        assert not {t.id for t in other} & {t.id for t in report}
        said = {s for t in report for s in t.statements}
        assert not {s for t in other for s in t.statements} & said
    assert not {tuple(c) for c in chats("tune")} & {tuple(c) for c in chats("report")}
    assert make_user("tune", 0).name != make_user("report", 0).name


def test_a_user_states_each_preference_once_among_300_chat_turns() -> None:
    user = make_user("report", 1)
    said = [t["content"] for s in user.sessions for t in s["turns"]]  # type: ignore[attr-defined]
    assert len(user.probes) == 20 and user.turns >= 300 + 40
    for topic in topics("report"):
        assert sum(text in topic.statements for text in said) == 1
        assert not any(holds(q.question, q.evidence) for q in user.probes)
    assert make_user("report", 1) == user  # deterministic


async def test_a_slice_runs_on_the_served_stack(settings: Settings, backend) -> None:
    settings.worker.embedded = True  # distillation runs, as under `attune serve`
    report = await run(settings, users=1, backend=backend, splits=("report", "tune"))
    figures = report.as_dict()
    moments = ("after import", "settled")
    scored = {f"{split}/{moment}" for split in ("report", "tune") for moment in moments}
    assert {k for k in figures if "/" in k} == scored
    for key in ("report/after import", "report/settled", "tune/settled"):
        assert figures[key]["asked"] == 20
        assert figures[key]["words_max"] <= WORD_LIMIT
    assert "report (v4, written blind: headline)" in report.table().splitlines()[2]
    stored = preferences_run(report, "slice", {})  # as a run: a case per question and moment
    assert len(stored.cases) == 80 == len({c.id for c in stored.cases})
    surfaced = sum(t.surfaced for t in report.tallies.values())
    assert sum(c.passed for c in stored.cases) == surfaced


def test_every_statement_holds_its_evidence_and_no_question_does() -> None:
    for split in ("tune", "seen", "seen2", "seen3", "report"):
        for topic in topics(split):
            assert all(holds(s, topic.evidence) for s in topic.statements), topic.id
            assert not any(holds(q, topic.evidence) for q in topic.questions), topic.id
