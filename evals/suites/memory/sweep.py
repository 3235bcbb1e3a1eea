"""What-if fusion settings for hybrid retrieval, scored on the memory eval's questions.

Each candidate setting replaces the service's retrieval settings for one pass of
``MemoryService.search`` over every question (restored after), so the sweep measures the
production code itself; the first row is the service's own settings and equals its hybrid
line. Two reference rows say where hybrid's margin comes from: dense alone (the dense
baseline) and dense with the old priors but no lexical votes.

To keep the choice honest, settings are chosen on dev and reported on test, split twice:
by user (half the users each) and by question template (``template_split``: each
phrasing in ``memory_phrases`` falls on one side by a hash of its text). Dev is dev users
asked with dev templates, test is test users asked with test templates; the cross cells
are left out, so no test figure shares a user or a phrasing with what was tuned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from evals.suites.memory import phrases as P
from evals.suites.memory.data import Question
from memory.service import MemoryService

KINDS = ["episodic"]


@dataclass(frozen=True)
class Candidate:
    """A fusion setting to try."""

    name: str
    rrf_k: int = 60
    dense: float = 1.0
    lexical: float = 1.0
    recency: float = 0.0
    fetch_k: int = 50
    strip_stopwords: bool = False
    user_said: float = 0.0
    question: float = 0.0

    def update(self) -> dict[str, Any]:
        """The ``MemorySettings`` fields this setting replaces."""
        return {
            "rrf_k": self.rrf_k,
            "dense_weight": self.dense,
            "lexical_weight": self.lexical,
            "recency_weight": self.recency,
            "fetch_k": self.fetch_k,
            "hybrid_lexical_stopwords": not self.strip_stopwords,
            "user_said_prior": self.user_said,
            "question_prior": self.question,
        }


CANDIDATES = (
    Candidate("dense alone (reference)", lexical=0.0),
    Candidate(
        "dense + priors, no lexical (ablation)", rrf_k=20, lexical=0.0, user_said=0.6, question=0.3
    ),
    Candidate("rrf_k=10, lexical 0.3, no priors", rrf_k=10, lexical=0.3),
    Candidate("rrf_k=60, lexical 1.0, recency 0.2", recency=0.2),
    Candidate("rrf_k=10, lexical 0.3 + priors", rrf_k=10, lexical=0.3, user_said=0.6, question=0.3),
    Candidate("rrf_k=10, lexical 0.1 + priors", rrf_k=10, lexical=0.1, user_said=0.6, question=0.3),
    Candidate("rrf_k=20, lexical 0.1 + priors", rrf_k=20, lexical=0.1, user_said=0.6, question=0.3),
    Candidate("rrf_k=20, lexical 0.2 + priors", rrf_k=20, lexical=0.2, user_said=0.6, question=0.3),
    Candidate("rrf_k=60, lexical 0.1 + priors", lexical=0.1, user_said=0.6, question=0.3),
    Candidate("rrf_k=20, lexical 0.1 + half priors", 20, lexical=0.1, user_said=0.3, question=0.15),
    Candidate(
        "rrf_k=20, lexical 0.1 + priors, recency 0.2",
        20,
        lexical=0.1,
        recency=0.2,
        user_said=0.6,
        question=0.3,
    ),
    Candidate(
        "rrf_k=20, lexical 0.1 w/o stopwords + priors",
        20,
        1.0,
        0.1,
        strip_stopwords=True,
        user_said=0.6,
        question=0.3,
    ),
)


@cache
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    """Every question phrasing (``Q_*`` in ``memory_phrases``) and a pattern matching it."""
    out = []
    for name in dir(P):
        value = getattr(P, name)
        if not name.startswith("Q_") or not isinstance(value, list | tuple):
            continue
        for template in value:
            parts = re.split(r"\{[^}]*\}", str(template))
            out.append((str(template), re.compile(".+?".join(map(re.escape, parts)))))
    return out


def template_of(question: str) -> str | None:
    """The phrasing ``question`` was written from (``None``: none matches)."""
    return next((t for t, pattern in _templates() if pattern.fullmatch(question)), None)


def template_split(question: str) -> str:
    """``dev`` or ``test``: the side of ``question``'s template, by a hash of its text.

    A question matching no template is ``test`` (never tuned on).
    """
    template = template_of(question)
    if template is None:
        return "test"
    return "dev" if hashlib.sha256(template.encode()).digest()[0] % 2 == 0 else "test"


def dev_users(user_keys: Sequence[str]) -> set[str]:
    """Half the users, the dev side of the user split (every other one, sorted)."""
    return set(sorted(user_keys)[0::2])


def cell(question: Question, dev: set[str]) -> str | None:
    """``dev`` (dev user, dev template), ``test`` (test user, test template) or ``None``."""
    side = template_split(question.text)
    if question.user in dev and side == "dev":
        return "dev"
    if question.user not in dev and side == "test":
        return "test"
    return None


def fusion_sweep(
    memory: MemoryService, questions: Sequence[Question], user_ids: dict[str, str]
) -> dict[str, Any]:
    """Recall@10 of hybrid retrieval (episodic) under the service's and other settings.

    Each setting is scored by ``MemoryService.search`` itself, its settings replaced for
    the run (and restored after), so the first row is the service's hybrid line.

    Returns:
        ``rows``: per setting, recall@10 on all questions, on dev (dev users, dev
        templates) and on test (test users, test templates) (the first is the service's
        settings, the second dense alone for reference); ``chosen``: the best fused
        setting on dev and its test figure beside the current settings' and dense
        alone's.
    """
    base = memory.settings
    dev = dev_users(list(user_ids))
    rows: list[dict[str, Any]] = []
    try:
        for cand in (None, *CANDIDATES):
            memory.settings = base if cand is None else base.model_copy(update=cand.update())
            scores = []
            for q in questions:
                hits = memory.search(user_ids[q.user], q.text, k=10, kinds=KINDS)
                found = {s["external_id"] for h in hits for s in h.sources}
                scores.append((cell(q, dev), len(found & set(q.gold)) / len(q.gold)))
            dev_s = [v for side, v in scores if side == "dev"]
            test_s = [v for side, v in scores if side == "test"]
            params = vars(cand) if cand is not None else {"lexical": base.lexical_weight}
            rows.append(
                {
                    "setting": cand.name if cand is not None else "current settings",
                    "params": {k: v for k, v in params.items() if k != "name"},
                    "recall@10": round(sum(v for _, v in scores) / len(scores), 4),
                    "dev": round(sum(dev_s) / len(dev_s), 4) if dev_s else None,
                    "test": round(sum(test_s) / len(test_s), 4) if test_s else None,
                }
            )
    finally:
        memory.settings = base
    fused_rows = [r for r in rows[1:] if r["params"]["lexical"] > 0]
    ablation = next(r for r in rows if r["setting"].startswith("dense + priors"))
    best = max(fused_rows, key=lambda r: (r["dev"] or 0.0, -rows.index(r)))
    return {
        "rows": rows,
        "dev_users": sorted(dev),
        "chosen": {
            "setting": best["setting"],
            "test": best["test"],
            "current_test": rows[0]["test"],
            "dense_test": rows[1]["test"],
            "dense_priors_test": ablation["test"],
        },
    }


def sweep_table(sweep: dict[str, Any]) -> str:
    """The sweep as text."""
    lines = [
        "  what-if fusion (episodic, hybrid R@10; chosen on dev users x dev templates, "
        "reported on test users x test templates)",
        f"    {'setting':<40} {'all':>6} {'dev':>6} {'test':>6}",
    ]
    for r in sweep["rows"]:
        dev = "" if r["dev"] is None else f"{r['dev']:.3f}"
        test = "" if r["test"] is None else f"{r['test']:.3f}"
        lines.append(f"    {r['setting']:<40} {r['recall@10']:6.3f} {dev:>6} {test:>6}")
    c = sweep["chosen"]
    lines.append(
        f"    best fused setting on dev: {c['setting']} → test {c['test']} "
        f"(current settings {c['current_test']}, dense alone {c['dense_test']}, "
        f"dense + priors {c['dense_priors_test']})"
    )
    return "\n".join(lines)
