"""The instruction detector on generated messages: held-out templates and values.

The classifier is trained on the ``train`` split of ``memory.persona.instructions_gen``;
this scores the whole detector (rules, typo repair, clause splitting, classifier) on the
``heldout`` split (templates, names, languages and tones never trained on: the headline)
and, labelled as such, on the ``train`` split it was fitted to.
"""

from __future__ import annotations

from evals.suites.instructions.data import Case
from memory.persona.instructions_gen import Split, compound, examples


def synthetic_cases(split: Split) -> list[Case]:
    """Generated single and compound messages of ``split`` as eval cases."""
    out: list[Case] = []
    for ex in [*examples(split, per_template=3), *compound(split, n=100)]:
        if ex.labels == ("none",):
            kind = "lookalike"
        elif all(e[1] in ("unset", "remove") for e in ex.expected):
            kind = "revocation"
        else:
            kind = "instruction"
        out.append(Case(ex.text, ex.expected, kind, "file"))  # type: ignore[arg-type]
    return out
