"""LoCoMo answer accuracy: answer each question from what Attune's search returns, then judge.

Recall says whether the evidence turns were found; accuracy says whether an answer written
from them is right. For each question of categories 1-4 the top ``k`` memories (as
``GET /memories/search`` returns them, each with who said it and when) go to an answer
model with the question; a judge model then compares the answer with the benchmark's gold
answer and says ``CORRECT`` or ``WRONG``. Both models are any OpenAI-compatible endpoint
(``evals.cli``: ``--answer-url``, ``--judge-url``); the judge is lenient on wording, strict
on facts, as in the LoCoMo and Mem0 papers' LLM-as-judge protocol.

Figures from a judge are only as good as the judge: a 135M-parameter model cannot judge.
Use a capable model and report which one beside the figure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from evals.suites.locomo.data import CATEGORIES, LocomoQuestion
from memory.views import MemoryView

ANSWER_SYSTEM = (
    "You answer questions about a long conversation between two people, using only the "
    "memories given. Each memory says who said it and when. Answer in a few words; give "
    "dates as the memories support them. If the memories do not hold the answer, say "
    '"unknown".'
)
JUDGE_SYSTEM = (
    "You grade an answer to a question about a conversation against the gold answer. "
    "Reply CORRECT if the answer states the same facts as the gold answer (wording, "
    "length and date format may differ; a date within the gold answer's period counts), "
    "otherwise WRONG. Reply with one word."
)
_VERDICT = re.compile(r"\b(CORRECT|WRONG)\b", re.IGNORECASE)


@dataclass
class Judged:
    """One question's answer and verdict."""

    question: LocomoQuestion
    answer: str
    correct: bool | None
    """``None`` when the judge's reply held no verdict."""


@dataclass
class AnswerReport:
    """Answer accuracy overall and per category."""

    answer_model: str
    judge_model: str
    k: int
    judged: list[Judged] = field(default_factory=list)

    def accuracy(self, category: str | None = None) -> float | None:
        """Share judged correct (unparsed verdicts count as wrong)."""
        chosen = [j for j in self.judged if category is None or j.question.category == category]
        return sum(bool(j.correct) for j in chosen) / len(chosen) if chosen else None

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data."""
        return {
            "answer_model": self.answer_model,
            "judge_model": self.judge_model,
            "k": self.k,
            "questions": len(self.judged),
            "unparsed_verdicts": sum(j.correct is None for j in self.judged),
            "accuracy": _round(self.accuracy()),
            "by_category": {c: _round(self.accuracy(c)) for c in CATEGORIES.values()},
        }

    def table(self) -> str:
        """One printable block."""
        d = self.as_dict()
        cats = ", ".join(f"{c} {_fmt(v)}" for c, v in d["by_category"].items())
        return (
            f"answer accuracy (top {self.k} memories; answers by {self.answer_model}, judged "
            f"by {self.judge_model}): {_fmt(d['accuracy'])} over {d['questions']} questions "
            f"({d['unparsed_verdicts']} verdicts unreadable, counted wrong); {cats}"
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def context(hits: Sequence[MemoryView]) -> str:
    """The memories as the answer model sees them: one line each, speaker and date first."""
    lines = []
    for h in hits:
        who = h.speaker or "unknown"
        lines.append(f"- ({who}, {h.created_at:%d %B %Y}): {h.text}")
    return "\n".join(lines) or "(no memories)"


def verdict(reply: str) -> bool | None:
    """``True``/``False`` for a ``CORRECT``/``WRONG`` reply; ``None`` when it holds neither."""
    m = _VERDICT.search(reply)
    return None if m is None else m.group(1).upper() == "CORRECT"


def judge_questions(
    questions: Sequence[LocomoQuestion],
    search: Callable[[LocomoQuestion], Sequence[MemoryView]],
    *,
    answer_model: BaseChatModel,
    judge_model: BaseChatModel,
    names: tuple[str, str],
    k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> AnswerReport:
    """Answer each question from ``search``'s top ``k`` memories and judge the answer.

    Args:
        questions: Questions with gold answers.
        search: The question's memories, best first (the service's search for its user).
        answer_model: Writes the answers.
        judge_model: Grades them against the gold answers.
        names: The answer and judge models' names, for the report.
        k: Memories given to the answer model.
        progress: Called after each question with how many are done.
    """
    report = AnswerReport(answer_model=names[0], judge_model=names[1], k=k)
    for done, q in enumerate(questions, start=1):
        hits = list(search(q))[:k]
        reply = answer_model.invoke(
            [
                SystemMessage(ANSWER_SYSTEM),
                HumanMessage(f"Memories:\n{context(hits)}\n\nQuestion: {q.text}"),
            ]
        )
        answer = reply.text.strip()
        graded = judge_model.invoke(
            [
                SystemMessage(JUDGE_SYSTEM),
                HumanMessage(
                    f"Question: {q.text}\nGold answer: {q.answer}\nAnswer to grade: {answer}"
                ),
            ]
        )
        report.judged.append(Judged(q, answer, verdict(graded.text)))
        if progress is not None:
            progress(done)
    return report
