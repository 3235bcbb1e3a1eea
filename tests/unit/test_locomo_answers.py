"""Answer accuracy's logic with scripted answer and judge models: what each model is shown,
how verdicts are read and how the figures add up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from evals.suites.locomo.answers import context, judge_questions, verdict
from evals.suites.locomo.data import LocomoQuestion
from memory.views import MemoryView
from tests.fakes import ScriptedChatModel

SAID = datetime(2023, 5, 8, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Any] = []


def _view(text: str, speaker: str | None) -> MemoryView:
    return MemoryView("m", "episodic", text, speaker, [], SAID, SAID, None, None)


def test_verdicts_are_read_from_the_judges_reply() -> None:
    assert verdict("CORRECT") is True
    assert verdict("The answer is wrong.") is False
    assert verdict("Verdict: correct, since both say May") is True
    assert verdict("I cannot tell") is None


def test_each_memory_is_shown_with_its_speaker_and_date() -> None:
    shown = context([_view("I went to the lake.", "Caroline"), _view("Nice!", None)])
    assert shown.splitlines() == [
        "- (Caroline, 08 May 2023): I went to the lake.",
        "- (unknown, 08 May 2023): Nice!",
    ]
    assert context([]) == "(no memories)"


def test_answers_are_judged_against_the_gold_answer_and_unreadable_verdicts_count_wrong() -> None:
    answers, judged = Recorder(), Recorder()
    questions = [
        LocomoQuestion("c", "Where did Caroline go?", ("D1:1",), "single-hop", "the lake"),
        LocomoQuestion("c", "When?", ("D1:2",), "temporal", "7 May 2023"),
    ]
    replies = iter(["CORRECT", "hmm"])

    class Judge(ScriptedChatModel):
        def _reply(self, messages: list[Any]) -> tuple[list[str], str]:
            self.script = next(replies)
            return super()._reply(messages)

    report = judge_questions(
        questions,
        lambda q: [_view("I went to the lake on Sunday.", "Caroline")] * 12,
        answer_model=ScriptedChatModel(script="The lake.", recorder=answers),
        judge_model=Judge(recorder=judged),
        names=("answerer", "judge"),
        k=3,
    )
    shown = answers.calls[0][-1].text
    assert shown.count("- (Caroline") == 3 and "Question: Where did Caroline go?" in shown
    assert "Gold answer: the lake" in judged.calls[0][-1].text
    assert "Answer to grade: The lake." in judged.calls[0][-1].text
    assert [j.correct for j in report.judged] == [True, None]
    figures = report.as_dict()
    assert figures["accuracy"] == 0.5 and figures["unparsed_verdicts"] == 1
    assert figures["by_category"]["single-hop"] == 1.0 and figures["by_category"]["temporal"] == 0.0
    assert figures["by_category"]["multi-hop"] is None
    assert "answerer" in report.table() and "judge" in report.table()
