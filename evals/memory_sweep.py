"""What-if fusion settings for hybrid retrieval, scored on the memory eval's questions.

Each question's rankings are fetched once through the index protocols — dense
(``VectorIndex.query``), lexical (``LexicalIndex.query``, on the question as asked and with
English function words removed) and recency — and fused offline with
``memory.retrieval.fusion.reciprocal_rank_fusion`` under each candidate setting, then moved by the
priors (``memory.retrieval.fusion.apply_priors``) and collapsed to one memory per text, the way
``MemoryService.search`` does (recency alone never admits a memory). The first row uses
the service's own settings and must match its hybrid line; any difference means this
module no longer mirrors ``search``. Two reference rows say where hybrid's margin comes
from: dense alone (the dense baseline) and dense with the priors but no lexical votes.

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

from sqlmodel import Session, col, select

from evals import memory_phrases as P
from evals.memory_data import Question
from memory.records.tables import Memory, MemorySource
from memory.retrieval.fusion import apply_priors, memory_prior, reciprocal_rank_fusion
from memory.retrieval.lexical import strip_stopwords
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


def _recent(memory: MemoryService, user_id: str, n: int) -> list[str]:
    """The user's newest episodic memories, as ``MemoryService.search`` ranks recency."""
    query = (
        select(Memory.id)
        .where(Memory.user_id == user_id, col(Memory.kind).in_(KINDS))
        .order_by(col(Memory.created_at).desc())
        .limit(n)
    )
    with Session(memory.engine) as session:
        return list(session.exec(query).all())


def _one_per_text(ids: Sequence[str], rows: dict[str, tuple[str | None, str, str]]) -> list[str]:
    """``ids`` without later copies of a text, as ``MemoryService.search`` returns them."""
    seen: set[str] = set()
    out = []
    for i in ids:
        if rows[i][2] not in seen:
            seen.add(rows[i][2])
            out.append(i)
    return out


def _recall10(ids: Sequence[str], external: dict[str, str | None], gold: Sequence[str]) -> float:
    found = {external.get(i) for i in ids[:10]}
    return len(found & set(gold)) / len(gold)


def fusion_sweep(
    memory: MemoryService, questions: Sequence[Question], user_ids: dict[str, str]
) -> dict[str, Any]:
    """Recall@10 of hybrid retrieval (episodic) under the service's and other settings.

    Returns:
        ``rows``: per setting, recall@10 on all questions, on dev (dev users, dev
        templates) and on test (test users, test templates)
        (the first is the service's settings, the second dense alone for reference);
        ``chosen``: the best fused setting on dev and its test figure beside the current
        settings' and dense alone's.
    """
    s = memory.settings
    current = Candidate(
        "current settings",
        s.rrf_k,
        s.dense_weight,
        s.lexical_weight,
        s.recency_weight,
        s.fetch_k,
        strip_stopwords=not s.hybrid_lexical_stopwords,
        user_said=s.user_said_prior,
        question=s.question_prior,
    )
    candidates = (current, *CANDIDATES)
    fetch = max(c.fetch_k for c in candidates)
    cache = []
    for q in questions:
        uid = user_ids[q.user]
        vector = memory.embedder.embed([q.text])[0]
        cache.append(
            {
                "dense": [
                    h.memory_id for h in memory.vectors.query(uid, vector, k=fetch, kinds=KINDS)
                ],
                "lexical": [
                    h.memory_id for h in memory.lexical.query(uid, q.text, k=fetch, kinds=KINDS)
                ],
                "lexical_stripped": [
                    h.memory_id
                    for h in memory.lexical.query(
                        uid, strip_stopwords(q.text), k=fetch, kinds=KINDS
                    )
                ],
                "recency": _recent(memory, uid, fetch),
            }
        )
    ids = {i for c in cache for ranking in c.values() for i in ranking}
    with Session(memory.engine) as session:
        links = session.exec(select(MemorySource).where(col(MemorySource.memory_id).in_(ids))).all()
        facts = {
            r.id: (r.speaker, r.text, r.content_hash)
            for r in session.exec(select(Memory).where(col(Memory.id).in_(ids))).all()
        }
    external = {link.memory_id: link.external_id for link in links}
    users = sorted(user_ids)
    dev = set(users[0::2])
    rows: list[dict[str, Any]] = []
    for cand in candidates:
        scores = []
        for q, c in zip(questions, cache, strict=True):
            n = max(cand.fetch_k, 20)
            lexical = c["lexical_stripped" if cand.strip_stopwords else "lexical"]
            fused = reciprocal_rank_fusion(
                {"dense": c["dense"][:n], "lexical": lexical[:n], "recency": c["recency"][:n]},
                {"dense": cand.dense, "lexical": cand.lexical, "recency": cand.recency},
                rrf_k=cand.rrf_k,
            )
            fused = [f for f in fused if set(f.ranks) - {"recency"}]
            if cand.user_said or cand.question:
                priors = {
                    f.id: memory_prior(
                        facts[f.id][0],
                        facts[f.id][1],
                        user_said=cand.user_said,
                        question=cand.question,
                    )
                    for f in fused
                }
                unit = max(cand.dense, cand.lexical) / (cand.rrf_k + 1)
                fused = apply_priors(fused, priors, unit=unit)
            ranked = _one_per_text([f.id for f in fused], facts)
            side = template_split(q.text)
            cell = "dev" if q.user in dev and side == "dev" else None
            cell = "test" if q.user not in dev and side == "test" else cell
            scores.append((cell, _recall10(ranked, external, q.gold)))
        dev_s = [v for cell, v in scores if cell == "dev"]
        test_s = [v for cell, v in scores if cell == "test"]
        rows.append(
            {
                "setting": cand.name,
                "params": {k: v for k, v in vars(cand).items() if k != "name"},
                "recall@10": round(sum(v for _, v in scores) / len(scores), 4),
                "dev": round(sum(dev_s) / len(dev_s), 4) if dev_s else None,
                "test": round(sum(test_s) / len(test_s), 4) if test_s else None,
            }
        )
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
