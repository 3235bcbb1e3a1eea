"""The instruction classifier: typo repair, clause splitting, slots, training, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evals.suites.instructions.suite import load_cases, score
from memory.persona.instructions_gen import LABELS, compound, examples, split_of
from memory.persona.instructions_model import (
    ClassifierDetector,
    InstructionClassifier,
    bundled_classifier,
    may_instruct,
    update_for,
)
from memory.persona.instructions_text import fine_clauses, repair_typos
from memory.persona.instructions_train import fit
from tests.conftest import shared_embedder

VOCAB = frozenset({"calm", "the", "now", "on", "in", "keep"})


def test_typos_are_repaired_towards_instruction_words_only() -> None:
    assert repair_typos("frm now on pls answr in italian", VOCAB) == (
        "from now on please answer in italian"
    )
    assert repair_typos("keep calm", VOCAB) == "keep calm"  # a real word stays
    assert repair_typos("call me Jordn", VOCAB) == "call me Jordn"  # a name is not a typo
    assert repair_typos("replyy in Frnch", VOCAB) == "reply in French"


def test_fine_clauses_split_lists_and_joined_requests() -> None:
    assert fine_clauses("a few things: call me Mo, keep it casual, and no markdown") == [
        "call me Mo",
        "keep it casual",
        "no markdown",
    ]
    assert fine_clauses("- be brief\n- use metric units") == ["be brief", "use metric units"]


def test_statements_and_plain_questions_are_not_classified() -> None:
    assert not may_instruct("My sister never uses emoji", "My sister never uses emoji", False)
    assert not may_instruct("make that shorter", "Can you make that shorter?", False)
    assert may_instruct("make answers shorter", "from now on make answers shorter?", True)
    assert may_instruct("I want short answers", "I want short answers", False)


@pytest.mark.parametrize(
    ("label", "clause", "expected"),
    [
        ("name_set", "greet me as Professor Oak", ("preferred_name", "set", "Professor Oak")),
        ("lang_set", "let's do everything in portuguese", ("language", "set", "Portuguese")),
        ("tone_set", "respond in the voice of a wizard", ("tone", "set", "like a wizard")),
        ("tone_set", "make your replies grumpy", ("tone", "set", "grumpy")),
        ("formal", "keep our chats formal", ("formality", "set", "formal")),
        (
            "rule_remove",
            "you no longer need to cite sources",
            ("instructions", "remove", "cite sources"),
        ),
    ],
)
def test_slots_are_filled_from_the_clause(
    label: str, clause: str, expected: tuple[object, ...]
) -> None:
    update = update_for(label, clause)
    assert update is not None and (update.field, update.op, update.value) == expected


def test_a_label_whose_slot_is_missing_gives_nothing() -> None:
    assert update_for("lang_set", "use a different language") is None
    assert update_for("name_set", "use a nickname") is None


def test_generated_splits_share_no_template() -> None:
    train = {e.template for e in examples("train")}
    heldout = {e.template for e in examples("heldout")}
    assert train and heldout and not train & heldout
    assert split_of("x") == split_of("x")
    assert all(len(e.labels) >= 2 and e.expected for e in compound("heldout", n=20))


def test_training_is_deterministic_and_learns_separable_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = (x[:, 0] > 0).astype(int)
    w1, b1 = fit(x, y, 2)
    w2, b2 = fit(x, y, 2)
    assert np.array_equal(w1, w2) and np.array_equal(b1, b2)
    clf = InstructionClassifier(["a", "b"], w1, b1)
    assert np.mean(clf.probabilities(x).argmax(axis=1) == y) > 0.9


def test_the_bundled_weights_match_the_labels() -> None:
    clf = bundled_classifier()
    assert clf.labels == LABELS and clf.weights.shape == (386, len(LABELS))


def test_detector_adds_what_the_rules_miss_and_keeps_lookalikes_out() -> None:
    detect = ClassifierDetector(shared_embedder()).detect
    fields = {(u.field, u.op, u.value) for u in detect("Please keep our chats formal, thanks.")}
    assert ("formality", "set", "formal") in fields
    assert not any(u.field == "instructions" for u in detect("Please keep our chats formal."))
    both = {(u.field, u.value) for u in detect("call me Mo, keep it casual, and no markdown")}
    assert {
        ("preferred_name", "Mo"),
        ("formality", "casual"),
        ("formatting.markdown", False),
    } <= both
    assert detect("My brother always answers in Spanish.") == []
    assert detect("Can you translate 'be brief' into German?") == []


def test_cases_file_is_scored(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(
        json.dumps(
            [
                {
                    "text": "Call me Sam.",
                    "expected": [["preferred_name", "set", "Sam"]],
                    "kind": "instruction",
                },
                {"text": "No more emoji.", "expected": [["formatting.emoji", "set", False]]},
                {
                    "text": "Stop calling me Sam.",
                    "expected": [["preferred_name", "unset", None]],
                    "kind": "revocation",
                },
                {"text": "My dog is called Sam.", "expected": []},
            ]
        )
    )
    cases = load_cases(path)
    assert [c.kind for c in cases] == ["instruction", "instruction", "revocation", "lookalike"]
    result = score(cases)
    assert (result.precision, result.recall) == (1.0, 1.0)


def test_the_classifier_is_a_configurable_detector() -> None:
    from memory.persona.instructions_llm import make_detector

    detector = make_detector(
        "classifier", base_url=None, model=None, api_key=None, prompt_template=None
    )
    assert isinstance(detector, ClassifierDetector)
