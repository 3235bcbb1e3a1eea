"""Precision and recall of instruction detection on the labelled phrasings.

``attune eval instructions`` prints them per split and per kind of case, and lists every
miss and false alarm so a rule change can be judged case by case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.suites.instructions.data import CASES, Case, Expected
from evals.suites.instructions.holdout2 import CASES_HOLDOUT2
from memory.persona.instructions import ProfileUpdate, detect_instructions

Detector = Callable[[str], list[ProfileUpdate]]
ALL_CASES: tuple[Case, ...] = (*CASES, *CASES_HOLDOUT2)


@dataclass
class Score:
    """Counts over a set of cases, with the cases that went wrong."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[tuple[str, Expected]] = field(default_factory=list)
    false_alarms: list[tuple[str, tuple[str, str, object]]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Share of detected updates that were expected (1.0 when nothing was detected)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of expected updates that were detected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_cases(path: Path) -> list[Case]:
    """Cases from a JSON file: ``[{"text", "expected": [[field, op, value], ...], "kind"}]``.

    ``value`` is a string, a bool, or ``null`` for an unset; ``kind`` is ``instruction``,
    ``revocation`` or ``lookalike`` (default: ``lookalike`` when nothing is expected, else
    ``instruction``). Every case gets the split ``file``.

    Raises:
        ValueError: A case without text, or an expected update that is not a triple.
    """
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    items = raw.get("cases", raw) if isinstance(raw, dict) else raw
    cases: list[Case] = []
    for i, item in enumerate(items):
        text = item.get("text")
        expected = item.get("expected") or []
        if not isinstance(text, str) or any(len(e) != 3 for e in expected):
            raise ValueError(f"case {i} in {path}: needs text and [field, op, value] triples")
        kind = item.get("kind") or ("instruction" if expected else "lookalike")
        cases.append(Case(text, tuple((str(f), str(o), v) for f, o, v in expected), kind, "file"))  # type: ignore[arg-type]
    return cases


def matches(expected: Expected, update: ProfileUpdate) -> bool:
    """Whether ``update`` is the update ``expected`` describes."""
    field_, op, value = expected
    if (update.field, update.op) != (field_, op):
        return False
    if value is None or isinstance(value, bool):
        return update.value == value
    got = str(update.value or "").lower()
    want = str(value).lower()
    if op in ("add", "remove", "forget"):
        return want in got or got in want
    return got == want


def score(cases: Iterable[Case], detect: Detector = detect_instructions) -> Score:
    """Score ``detect`` on ``cases``: one true positive per expected update found."""
    result = Score()
    for case in cases:
        found = detect(case.text)
        unmatched = list(found)
        for expected in case.expected:
            hit = next((u for u in unmatched if matches(expected, u)), None)
            if hit is None:
                result.fn += 1
                result.misses.append((case.text, expected))
            else:
                result.tp += 1
                unmatched.remove(hit)
        for update in unmatched:
            result.fp += 1
            result.false_alarms.append((case.text, (update.field, update.op, update.value)))
    return result


def report(cases: Sequence[Case] = ALL_CASES, detect: Detector = detect_instructions) -> str:
    """A printable table of precision and recall by split and kind, then the errors."""
    lines = [f"{'slice':<22}{'cases':>6}{'precision':>11}{'recall':>8}{'tp':>5}{'fp':>4}{'fn':>4}"]
    slices: list[tuple[str, list[Case]]] = [("all", list(cases))]
    for split in ("dev", "test", "holdout1", "holdout2", "file"):
        slices.append((f"split={split}", [c for c in cases if c.split == split]))
    for kind in ("instruction", "revocation", "lookalike"):
        slices.append((f"kind={kind}", [c for c in cases if c.kind == kind]))
    overall = score(cases, detect)
    for name, chosen in slices:
        if not chosen:
            continue
        s = score(chosen, detect)
        lines.append(
            f"{name:<22}{len(chosen):>6}{s.precision:>11.3f}{s.recall:>8.3f}"
            f"{s.tp:>5}{s.fp:>4}{s.fn:>4}"
        )
    for text, expected in overall.misses:
        lines.append(f"MISS  {text!r}: expected {expected}")
    for text, got in overall.false_alarms:
        lines.append(f"FALSE {text!r}: detected {got}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
