"""Train the instruction classifier on generated clauses; deterministic, a minute on a CPU.

``python -m memory.persona.instructions_train`` regenerates
``memory/persona/instructions_classifier.npz`` from the ``train`` split of
:mod:`memory.persona.instructions_gen` (plus sentences of ordinary prose from
``evals/data/general_text_v1.jsonl`` as negatives). The ``heldout`` split (other templates,
other names, languages and tones) is never used here; ``attune eval instructions
--synthetic`` scores it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory.persona.instructions_gen import (
    LABELS,
    Example,
    Split,
    chat_sentences,
    compound,
    examples,
)
from memory.persona.instructions_model import WEIGHTS_PATH, InstructionClassifier, features
from memory.persona.instructions_text import fine_clauses
from memory.retrieval.protocols import Embedder

PROSE_PATH = Path(__file__).parents[2] / "evals" / "data" / "general_text_v1.jsonl"
EXAMPLES_PATH = Path(__file__).with_name("instructions_examples.txt")


def prose(path: Path = PROSE_PATH) -> list[str]:
    """Paragraphs of ordinary prose (negatives), or none if the file is missing."""
    if not path.is_file():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def dataset(split: Split) -> list[Example]:
    """Single-clause examples, generated compounds and prose sentences of ``split``.

    The ``train`` split also holds the hand-written messages (:func:`written`).
    """
    extra = written() if split == "train" else []
    return [*examples(split), *compound(split), *chat_sentences(prose(), split), *extra]


def written(path: Path = EXAMPLES_PATH) -> list[Example]:
    """Hand-written messages, one instruction at most each (``LABEL<TAB>message``).

    Written by someone who saw neither the detector, its templates nor any evaluation set,
    to widen the phrasings beyond the templates; they count as training data only.
    """
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, _, text = line.partition("\t")
        if label not in LABELS or not text.strip():
            raise ValueError(f"not LABEL<TAB>message with a known label: {line!r}")
        out.append(Example(text.strip(), (label,), "written", "train"))
    return out


def clause_examples(data: Sequence[Example]) -> list[tuple[str, str]]:
    """(clause, label) pairs: each example cut as the detector cuts it.

    A single-label example's longest clause carries its label and the rest (lead-ins,
    trailers left alone by a comma) are ``none``; compounds are used whole only through
    their parts, so they are skipped here.
    """
    out: list[tuple[str, str]] = []
    for ex in data:
        if len(ex.labels) != 1:
            continue
        pieces = fine_clauses(ex.text) or [ex.text]
        main = max(pieces, key=lambda p: len(p.split()))
        out.append((ex.text, ex.labels[0]))
        if main != ex.text:
            out.append((main, ex.labels[0]))
        out.extend((p, "none") for p in pieces if p != main and ex.labels[0] != "none")
    return out


def fit(
    vectors: np.ndarray[Any, Any], targets: np.ndarray[Any, Any], n_labels: int, *, c: float = 10.0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Softmax regression (L-BFGS, balanced classes; deterministic): weights and bias.

    ``c`` (inverse L2 strength) was chosen by 3-fold cross-validation over the ``train``
    split's templates (folds by template, so a fold's phrasings are unseen): accuracy rose
    from C=0.3 to C=10 and was flat beyond; the ``heldout`` split played no part.
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit(vectors, targets)
    weights = np.zeros((vectors.shape[1], n_labels))
    bias = np.full(n_labels, -1e4)  # a label absent from training is never predicted
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: one logit, the first class's is zero
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    weights[:, model.classes_] = coef.T
    bias[model.classes_] = intercept
    return weights, bias


def train(embedder: Embedder) -> InstructionClassifier:
    """A classifier trained on the ``train`` split."""
    pairs = clause_examples(dataset("train"))
    texts = [t for t, _ in pairs]
    vectors = features(texts, embedder.embed(texts)).astype(np.float64)
    targets = np.asarray([LABELS.index(label) for _, label in pairs])
    weights, bias = fit(vectors, targets, len(LABELS))
    return InstructionClassifier(LABELS, weights, bias)


def save(classifier: InstructionClassifier, path: Path = WEIGHTS_PATH) -> None:
    """Write ``classifier`` as a small ``.npz`` (float16 weights)."""
    np.savez_compressed(
        path,
        labels=np.asarray(classifier.labels),
        weights=classifier.weights.astype(np.float16),
        bias=classifier.bias.astype(np.float32),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Train on the generated ``train`` split and save the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args(argv)
    from memory.retrieval.embeddings import MiniLMEmbedder

    classifier = train(MiniLMEmbedder())
    save(classifier, args.out)
    print(f"saved {len(classifier.labels)} labels to {args.out}")


if __name__ == "__main__":
    main()
