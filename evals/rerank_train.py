"""Train the search reranker (``memory.retrieval.rerank``) and score it where it was not trained.

    python -m evals.rerank_train --locomo ../shared/data/locomo-dev --work EMPTY_DIR [--write]

Both sources are imported as ``POST /v1/users/{id}/history`` imports them, every vector is
written, and each question's first-stage candidates (``memory.retrieval.search.candidates``,
the top ``rerank_top``) become feature rows labelled by whether the candidate is a source of
the question's evidence:

- LoCoMo's development conversations (real chats between two named people; categories 1-4);
- the synthetic suite (``evals/data/memory_v1.json``), episodic search as its headline.
  Only its dev cell (dev users asked with dev templates, ``evals.suites.memory.sweep.cell``) is
  ever trained on; its test cell stays held out for ``attune eval memory``.

Held-out figures, printed beside the fused order's on the same questions:

- LoCoMo, leave one conversation out: each conversation reranked by a model trained on
  the other conversations and the synthetic dev cell;
- synthetic test cell: a model trained on every LoCoMo conversation and the synthetic dev
  cell, which is the model ``--write`` ships.

Each source weighs the same in training (its rows weighted by one over its question
count), so neither the larger synthetic set nor the generator's phrasing dominates.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sqlmodel import Session
from tqdm import tqdm

from evals.cli_support import settings_for
from evals.suites.locomo.data import load as load_locomo
from evals.suites.memory.data import DATA_PATH
from evals.suites.memory.data import load as load_synthetic
from evals.suites.memory.suite import import_dataset
from evals.suites.memory.sweep import cell, dev_users
from memory.history import import_history
from memory.records import db, repo
from memory.retrieval.rerank import FEATURES, WEIGHTS, LinearReranker, features
from memory.retrieval.search import candidates, load_links
from memory.service import MemoryService
from wiring.services import build_memory

K = 10


@dataclass
class Asked:
    """One question's candidates: features, labels and what recall@10 needs."""

    source: str  # "locomo:<conversation>" or "synthetic:<dev|test|other>"
    x: NDArray[np.float64]
    found: list[set[str]]  # the evidence ids each candidate is a source of
    texts: list[str]  # content hashes: a repeated text counts once, as search returns it
    evidence: int

    @property
    def y(self) -> NDArray[np.int_]:
        """1 for a candidate that is a source of the evidence, else 0."""
        return np.array([bool(f) for f in self.found], dtype=int)

    def recall(self, order: Sequence[int], k: int = K) -> float:
        """Recall@k of the candidates taken in ``order`` (repeated texts skipped)."""
        seen: set[str] = set()
        got: set[str] = set()
        for i in order:
            if len(seen) == k:
                break
            if self.texts[i] in seen:
                continue
            seen.add(self.texts[i])
            got |= self.found[i]
        return len(got) / max(self.evidence, 1)

    def order(self, model: LinearReranker | None) -> list[int]:
        """The candidates' order: by ``model``'s scores, or fused if ``None``."""
        if model is None:
            return list(range(len(self.found)))
        s = model.scores(self.x)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))


def leave_one_out(
    groups: Mapping[str, Sequence[Asked]], ks: Sequence[int]
) -> dict[str, list[dict[int, float]]]:
    """Each group's questions reranked by a model fitted on the other groups, recall@ks."""
    out: dict[str, list[dict[int, float]]] = {}
    for held, test in groups.items():
        train = [
            a
            for g, asked in groups.items()
            if g != held
            for a in asked
            if a.evidence and len(a.found) > 1
        ]
        labels = {int(v) for a in train for v in a.y}
        # Too little to learn from (a slice without a found piece of evidence): fused order.
        model = fit(train, {}) if labels == {0, 1} else None
        out[held] = [{k: a.recall(a.order(model), k) for k in ks} for a in test]
    return out


def ask(
    memory: MemoryService,
    user_id: str,
    text: str,
    evidence: Sequence[str],
    *,
    source: str,
    kinds: Sequence[str] | None = None,
) -> Asked:
    """The first-stage candidates of one question, as feature rows and labels."""
    s = memory.settings
    c = candidates(
        memory.engine,
        embedder=memory.embedder,
        vectors=memory.vectors,
        lexical=memory.lexical,
        settings=s,
        user_id=user_id,
        query=text,
        k=20,
        kinds=kinds,
        mode="hybrid",
        dense_ready=True,
    )
    fused = [f for f in c.fused if f.id in c.rows][: s.rerank_top]
    links: dict[str, set[str]] = {}
    for link in load_links(memory.engine, [f.id for f in fused]):
        links.setdefault(link.memory_id, set()).add(link.external_id or "")
    gold = set(evidence)
    return Asked(
        source=source,
        x=features(text, fused, c.rows, c.signals),
        found=[links.get(f.id, set()) & gold for f in fused],
        texts=[c.rows[f.id].content_hash for f in fused],
        evidence=len(gold),
    )


def collect(memory: MemoryService, locomo: Path, synthetic: Path) -> list[Asked]:
    """Import both sources and ask every question (vectors written first)."""
    asked: list[Asked] = []
    convs = load_locomo(locomo)
    users: dict[str, str] = {}
    for conv in tqdm(convs, desc="import locomo", unit="conv"):
        with Session(memory.engine) as session:
            user, _ = repo.create_user(session, name=f"locomo:{conv.key}:{time.time_ns()}")
            session.commit()
            user_id = user.id
        result = import_history(memory.engine, user_id=user_id, sessions=conv.sessions)
        memory.import_turns(result.new_turns)
        users[conv.key] = user_id
    memory.wait_dense()
    for conv in convs:
        for q in tqdm(conv.questions, desc=f"ask {conv.key}", unit="q"):
            asked.append(
                ask(memory, users[conv.key], q.text, q.evidence, source=f"locomo:{conv.key}")
            )
    dataset = load_synthetic(synthetic)
    stats = import_dataset(memory.engine, memory, dataset, progress=True)
    dev = dev_users(list(stats.user_ids))
    for sq in tqdm(dataset.questions, desc="ask synthetic", unit="q"):
        side = cell(sq, dev) or "other"
        asked.append(
            ask(
                memory,
                stats.user_ids[sq.user],
                sq.text,
                sq.gold,
                source=f"synthetic:{side}",
                kinds=["episodic"],
            )
        )
    return [a for a in asked if a.evidence and len(a.found) > 1]


def fit(train: Sequence[Asked], about: dict[str, object], *, c: float = 1.0) -> LinearReranker:
    """A logistic model on ``train``'s rows, each source weighing the same.

    ``c`` is scikit-learn's inverse regularization strength.
    """
    per_source: dict[str, int] = {}
    for a in train:
        key = a.source.split(":")[0]
        per_source[key] = per_source.get(key, 0) + 1
    x = np.vstack([a.x for a in train])
    y = np.concatenate([a.y for a in train])
    w = np.concatenate(
        [np.full(len(a.found), 1.0 / per_source[a.source.split(":")[0]]) for a in train]
    )
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, y, sample_weight=w * len(w) / w.sum())
    return LinearReranker(mean, scale, model.coef_[0], float(model.intercept_[0]), about)


def score(model: LinearReranker | None, test: Sequence[Asked]) -> float:
    """Mean recall@10 over ``test``: reranked by ``model``, or in fused order if ``None``."""
    values = [a.recall(a.order(model)) for a in test]
    return sum(values) / len(values) if values else float("nan")


def main(argv: Sequence[str] | None = None) -> None:
    """Collect, cross-validate, print the figures and (``--write``) ship the model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locomo", type=Path, required=True, help="LoCoMo development folder")
    parser.add_argument("--synthetic", type=Path, default=DATA_PATH, help="synthetic dataset")
    parser.add_argument("--work", type=Path, required=True, help="an empty working directory")
    parser.add_argument("--write", action="store_true", help=f"write the model to {WEIGHTS}")
    parser.add_argument("--top", type=int, default=None, help="candidates reranked")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularization")
    args = parser.parse_args(argv)
    settings = settings_for(args.work)
    memory = build_memory(settings, db.open_engine(settings.db))
    if args.top:
        memory.settings = memory.settings.model_copy(update={"rerank_top": args.top})
    asked = collect(memory, args.locomo, args.synthetic)
    convs = sorted({a.source for a in asked if a.source.startswith("locomo:")})
    syn_dev = [a for a in asked if a.source == "synthetic:dev"]
    syn_test = [a for a in asked if a.source == "synthetic:test"]
    results: dict[str, dict[str, float]] = {}
    held: list[tuple[float, float, int]] = []
    for conv in convs:
        train = [a for a in asked if a.source in convs and a.source != conv] + syn_dev
        test = [a for a in asked if a.source == conv]
        model = fit(train, {}, c=args.c)
        fused, reranked = score(None, test), score(model, test)
        held.append((fused, reranked, len(test)))
        results[f"held-out {conv}"] = {"fused": fused, "reranked": reranked, "n": len(test)}
    n = sum(h[2] for h in held)
    results["held-out locomo (leave one conversation out)"] = {
        "fused": sum(h[0] * h[2] for h in held) / n,
        "reranked": sum(h[1] * h[2] for h in held) / n,
        "n": n,
    }
    final_train = [a for a in asked if a.source in convs] + syn_dev
    about: dict[str, object] = {
        "trained_on": {"locomo": convs, "synthetic": "dev users x dev templates"},
        "rerank_top": memory.settings.rerank_top,
        "questions": len(final_train),
    }
    final = fit(final_train, about, c=args.c)
    results["held-out synthetic (test users x test templates)"] = {
        "fused": score(None, syn_test),
        "reranked": score(final, syn_test),
        "n": len(syn_test),
    }
    results["tuned-on: locomo, all dev conversations"] = {
        "fused": score(None, [a for a in asked if a.source in convs]),
        "reranked": score(final, [a for a in asked if a.source in convs]),
        "n": n,
    }
    results["tuned-on: synthetic dev cell"] = {
        "fused": score(None, syn_dev),
        "reranked": score(final, syn_dev),
        "n": len(syn_dev),
    }
    about["recall@10"] = {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}
    print(f"{'recall@10':<55} {'fused':>7} {'reranked':>9} {'n':>5}")
    for name, r in results.items():
        print(f"{name:<55} {r['fused']:>7.3f} {r['reranked']:>9.3f} {int(r['n']):>5}")
    print("weights (standardized):")
    for name, c in zip(FEATURES, final.coef, strict=True):
        print(f"  {name:<15} {c:+.3f}")
    if args.write:
        LinearReranker(final.mean, final.scale, final.coef, final.intercept, about).save(WEIGHTS)
        print(f"written {WEIGHTS}")
    print(json.dumps(about["recall@10"]))


if __name__ == "__main__":
    main()
