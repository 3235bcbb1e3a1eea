"""Rule-based detection of explicit instructions and preferences in a user's message.

An instruction must be addressed to the assistant ("call me Captain", "from now on answer
in French", "shorter answers please"), so look-alikes such as "my friend calls me Captain"
or "I always answer emails in French" change nothing. The message is split into clauses;
a clause counts only when, after polite lead-ins ("please", "from now on", "could you",
"I'd like you to"), it starts with a command the rules know. Quoted text is mentioned, not
meant, and is ignored.

Each detection is a :class:`ProfileUpdate` on a profile field (see ``memory.persona.document``):
``preferred_name``, ``language``, ``tone``, ``formality``, ``verbosity``,
``formatting.emoji|lists|markdown``, ``instructions`` (free-form standing rules), or
``memories`` with op ``forget`` ("forget that I live in Paris").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Op = Literal["set", "unset", "add", "remove", "forget"]


@dataclass(frozen=True)
class ProfileUpdate:
    """One change to a profile field that a message asks for.

    Attributes:
        field: The profile field (dotted for nested ones: ``formatting.emoji``).
        op: ``set``/``unset`` a scalar, ``add``/``remove`` a standing instruction, or
            ``forget`` memories matching ``value``.
        value: The new value (a string, or a bool for formatting), the instruction's text,
            or what to forget.
        reason: Why, in words, for the profile history.
        rule: The instruction as an imperative phrase ("answer in French"), for memory.
    """

    field: str
    op: Op
    value: str | bool | None
    reason: str
    rule: str | None = None


_LANGUAGES_WORDS = (
    "Arabic Bengali Bulgarian Catalan Chinese Mandarin Cantonese Croatian Czech Danish "
    "Dutch English Estonian Finnish French German Greek Hebrew Hindi Hungarian Icelandic "
    "Indonesian Irish Italian Japanese Korean Latin Latvian Lithuanian Malay Norwegian "
    "Persian Polish Portuguese Romanian Russian Serbian Slovak Slovenian Spanish Swahili "
    "Swedish Tagalog Thai Turkish Ukrainian Urdu Vietnamese Welsh"
)
LANGUAGES = _LANGUAGES_WORDS.split()
_LANG_BARE = r"(?:" + "|".join(LANGUAGES) + r")\b"
_LANG = r"(?P<lang>" + "|".join(LANGUAGES) + r")\b"

_I = re.IGNORECASE
# Lead-ins stripped from the start of a clause, repeatedly. ``standing`` ones also mark
# the clause as a standing instruction for the generic rules below.
_STANDING_LEAD = re.compile(
    r"^(?:from\s+now\s+on|going\s+forward|henceforth|in\s+(?:the\s+)?future|"
    r"from\s+here\s+on(?:\s+out)?|starting\s+(?:now|today)|for\s+the\s+rest\s+of\s+"
    r"(?:this|our)\s+(?:chat|conversation)|every\s+time|each\s+time|"
    r"always|permanently)\b[,:]?\s*",
    _I,
)
_POLITE_LEAD = re.compile(
    r"^(?:ok(?:ay)?|so|and|also|oh|hey|well|alright|right|actually|btw|by\s+the\s+way|"
    r"please|pls|plz|kindly|just|one\s+more\s+thing|one\s+thing|"
    r"i\s+(?:want|need)\s+you\s+to|i'?d\s+(?:like|love|prefer)\s+(?:it\s+if\s+)?you\s+(?:to\s+)?|"
    r"i\s+would\s+(?:like|love|prefer)\s+(?:it\s+if\s+)?you\s+(?:to\s+)?|i\s+prefer\s+(?:that\s+)?you\s+|"
    r"would\s+you\s+mind|can\s+you|could\s+you|would\s+you|will\s+you|you\s+can|you\s+could|"
    r"you\s+should|you\s+must|you\s+may|make\s+sure\s+(?:to|you)|be\s+sure\s+to|remember\s+to|"
    r"try\s+to|do\s+me\s+a\s+favou?r\s+and|feel\s+free\s+to\s+(?=use)|"
    r"(?:let'?s|can\s+we|could\s+we|shall\s+we)\s+(?=switch|go\s+back|keep|stick))\b[,:]?\s*",
    _I,
)
_TRAILING = re.compile(
    r"[\s,]*(?:please|pls|plz|thanks|thank\s+you|from\s+now\s+on|going\s+forward|"
    r"for\s+now|anymore|any\s+more|again|ok(?:ay)?|though|instead|too|as\s+well|"
    r"in\s+(?:the\s+)?future)$",
    _I,
)
_TITLE_DOT = r"(?<!\bdr)(?<!\bmr)(?<!\bms)(?<!\bmx)(?<!\bmrs)(?<!\bprof)(?<!\bst)"
_SENTENCES = re.compile(_TITLE_DOT + r"[.!?;\n]+\s*", _I)
_VERBS = (
    r"(?:answer|reply|respond|speak|talk|write|use|stop|don'?t|do\s+not|never|always|be|keep|"
    r"call|avoid|drop|switch|forget|no\s+more|make|end|start|give|include)\b"
)
_CONNECTIVES = re.compile(
    r"\s*,?\s+(?:and|but)\s+(?=(?:please\s+)?(?:also\s+)?" + _VERBS + r")|,\s+(?=" + _VERBS + ")",
    _I,
)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|‘[^’]*’|(?<!\w)'[^']*\s[^']*'(?!\w)")

_NAME_STOP_WORDS = (
    "a an the at on in if when whenever later tomorrow tonight today back soon now asap "
    "sometime anytime maybe after before again please crazy what whatever that it this by "
    "so old-fashioned you him her them us me for to about up any once"
)
_NAME_STOP = frozenset(_NAME_STOP_WORDS.split())
_TITLES = frozenset(["dr", "mr", "mrs", "ms", "mx", "prof", "sir", "st"])
_SAY = r"(?:answer|reply|respond|speak|talk|write|chat|text|explain\s+things)"

# Each rule: pattern anchored at the clause start → builder of updates.
_CALL_ME = re.compile(
    r"^(?:call(?:ing)?|address(?:ing)?|refer(?:ring)?\s+to|name)\s+me(?:\s+as)?\s+(?P<name>[\w'.-]+(?:\s+[\w'.-]+){0,3})",
    _I,
)
_STOP_NAME = re.compile(
    r"^(?:(?:stop|quit)\s+(?:calling|addressing)\s+me|(?:don'?t|do\s+not|never)\s+call\s+me|"
    r"drop\s+the\s+(?:nick)?name|forget\s+(?:the|my)\s+nickname|no\s+more\s+(?:nick)?names?|"
    r"(?:just\s+)?use\s+my\s+(?:real\s+|actual\s+)?name)\b",
    _I,
)
_LANG_SET = re.compile(
    r"^(?:" + _SAY + r"(?:\s+(?:to\s+me|me|back))?(?:\s+only)?\s+(?:only\s+)?in\s+|"
    r"use\s+(?:only\s+)?|switch\s+(?:back\s+)?(?:over\s+)?to\s+|go\s+back\s+to\s+|"
    r"stick\s+to\s+|(?:speak|write|answer|reply|respond|talk)\s+(?=" + _LANG_BARE + r"))" + _LANG,
    _I,
)
_LANG_STOP = re.compile(
    r"^(?:(?:stop|quit)\s+(?:answering|replying|responding|speaking|talking|writing)|"
    r"(?:you\s+)?(?:don'?t|do\s+not)\s+(?:have|need)\s+to\s+(?:answer|reply|respond|speak|"
    r"talk|write))(?:\s+to\s+me)?\s+in\s+" + _LANG,
    _I,
)
_EMOJI_OFF = re.compile(
    r"^(?:(?:stop|quit)\s+(?:using|adding|putting|sending)|(?:don'?t|do\s+not|never)\s+(?:use|add|"
    r"put|send)|no(?:\s+more)?|avoid|drop\s+the|lose\s+the|without|less|fewer|cut\s+(?:out\s+)?the)"
    r"\s+(?:any\s+|all\s+(?:the|those)\s+|the\s+|those\s+|so\s+many\s+)?emojis?\b|"
    r"^(?:way\s+)?too\s+many\s+emojis?\b",
    _I,
)
_EMOJI_ON = re.compile(
    r"^(?:use|add|include|put\s+in|throw\s+in|more)\s+(?:some\s+|more\s+|lots\s+of\s+|a\s+few\s+)?"
    r"emojis?\b|^emojis?\s+(?:are|is)\s+(?:fine|ok(?:ay)?|allowed|welcome|good)\b",
    _I,
)
_BRIEF = re.compile(
    r"^(?:tl;?dr\b|(?:give\s+(?:me\s+)?|i\s+(?:need|want|prefer)\s+)?(?:shorter|briefer|more\s+concise|less\s+wordy|more\s+succinct)\s+(?:answers|replies|"
    r"responses)|(?:be|keep\s+(?:it|things|your\s+(?:answers|replies|responses)))\s+(?:more\s+)?"
    r"(?:brief|short|concise|succinct|to\s+the\s+point)|(?:make|keep)\s+(?:your\s+)?(?:answers|"
    r"replies|responses)\s+(?:shorter|short|brief)|(?:answer|reply|respond)\s+(?:briefly|"
    r"concisely|in\s+(?:one|a\s+few)\s+(?:sentence|line)s?)|less\s+(?:verbose|rambling|text)|"
    r"(?:stop|quit)\s+rambling|(?:your\s+)?(?:answers|replies|responses)\s+are\s+(?:way\s+)?too\s+"
    r"long)\b",
    _I,
)
_DETAILED = re.compile(
    r"^(?:(?:give\s+(?:me\s+)?|i\s+(?:need|want|prefer)\s+)?(?:longer|more\s+detailed|fuller)\s+"
    r"(?:answers|replies|responses|explanations)|(?:be\s+more|go\s+into\s+"
    r"more)\s+detail(?:ed)?|(?:give|explain)\s+(?:me\s+)?more\s+detail|elaborate\s+more|(?:answer|"
    r"reply|respond)\s+in\s+(?:more\s+)?detail|(?:your\s+)?(?:answers|replies|responses)\s+are\s+"
    r"(?:way\s+)?too\s+short)\b",
    _I,
)
_LENGTH_RESET = re.compile(
    r"^(?:normal|regular|any)\s+length\s+is\s+(?:fine|ok(?:ay)?)|(?:you\s+can\s+)?(?:write|answer)\s+"
    r"(?:as\s+much|at\s+whatever\s+length)\s+as\s+you\s+(?:like|want)\b",
    _I,
)
_LISTS_OFF = re.compile(
    r"^(?:(?:stop|quit)\s+using|(?:don'?t|do\s+not|never)\s+use|no(?:\s+more)?|avoid)\s+"
    r"(?:bullet(?:\s+points|ed\s+lists)?|bullets|lists|numbered\s+lists)\b",
    _I,
)
_LISTS_ON = re.compile(
    r"^(?:use|give\s+me|answer\s+(?:with|in))\s+(?:bullet(?:\s+points|ed\s+lists)?|bullets|"
    r"(?:numbered\s+)?lists)\b",
    _I,
)
_MARKDOWN_OFF = re.compile(
    r"^(?:(?:stop|quit)\s+using|(?:don'?t|do\s+not|never)\s+use|no(?:\s+more)?|avoid|without)\s+"
    r"markdown\b|^(?:(?:write|answer|reply)\s+in\s+)?plain\s+text(?:\s+only)?\b",
    _I,
)
_MARKDOWN_ON = re.compile(r"^(?:use|format\s+(?:with|in)|write\s+in)\s+markdown\b", _I)
_FORMAL = re.compile(
    r"^(?:be|sound|stay|keep\s+it)\s+(?:a\s+(?:bit|little)\s+)?(?:more\s+)?"
    r"(?P<f>formal|professional|polite)\b|"
    r"^(?:be|sound|keep\s+it)\s+(?:more\s+)?(?P<c>casual|informal|relaxed|laid[\s-]back)\b|"
    r"^(?:be\s+)?less\s+(?P<c2>formal|stiff|stuffy)\b|^(?:stop|quit)\s+being\s+(?:so\s+)?"
    r"(?P<c3>formal|stiff)\b",
    _I,
)
_FUNCTION_WORDS = (
    r"(?:when|whenever|while|if|and|or|but|to|with|from|for|in|on|at|about|all|every|"
    r"please|now|again|today|forever|always|instead|though|ok(?:ay)?)\b"
)
# "a pirate", "a sports commentator"; not "a cowboy when you reply".
LIKE_A = r"(?:a|an)\s+[a-z]+(?:\s+(?!" + _FUNCTION_WORDS + r")[a-z]+)?"
_TONE_LIKE = re.compile(r"^(?:" + _SAY + r"|sound|act)\s+like\s+(?P<tone>" + LIKE_A + ")", _I)
_TONE_ADJ = re.compile(
    r"^(?:be|sound|stay)\s+(?:more\s+)?(?P<tone>friendly|playful|serious|funny|enthusiastic|"
    r"blunt|direct|gentle|warm|cheerful|sarcastic|witty|encouraging|upbeat|calm)\b|"
    r"^use\s+an?\s+(?P<tone2>[a-z]+)\s+tone\b",
    _I,
)
_TONE_STOP = re.compile(
    r"^(?:(?:stop|quit)\s+(?:" + r"answering|replying|responding|speaking|talking|writing|acting|"
    r"sounding)\s+like\s+(?:a|an)\s+[a-z]+|drop\s+the\s+[a-z]+\s+(?:act|voice|talk|thing|"
    r"persona|accent)|(?:stop|quit)\s+with\s+the\s+[a-z]+\s+(?:act|voice|talk|thing|persona|"
    r"accent)|no\s+more\s+[a-z]+\s+(?:talk|speak|voice)|(?:talk|speak|answer|write)\s+"
    r"normally|back\s+to\s+normal)\b",
    _I,
)
_FORGET = re.compile(
    r"^forget\s+(?:that\s+|about\s+(?:the\s+fact\s+that\s+)?|what\s+I\s+(?:said|told\s+you)\s+"
    r"about\s+)(?P<what>.{3,200})",
    _I,
)
_STOP_RULE = re.compile(
    r"^(?:(?:stop|quit)\s+(?P<gerund>[a-z]+ing\b.{0,150})|(?:forget|ignore|drop|cancel|never\s+mind)"
    r"\s+(?:my|the)\s+(?:earlier\s+|previous\s+|old\s+)?(?:instruction|rule|request)\s+(?:about|"
    r"to)\s+(?P<about>.{3,150}))",
    _I,
)
_THIS = r"this\s+(?:one\s+)?(?:email|message|reply|answer|question|response|letter|post|draft|time)"
ONE_OFF = re.compile(
    r"\b(?:for\s+" + _THIS + r"\s+only|(?:just|only)\s+(?:for\s+)?" + _THIS + r"|"
    r"(?:just|only)\s+this\s+once)\b",
    _I,
)
_NOT_IMPERATIVE_WORDS = (
    "i i'm im i've ive i'd id i'll ill we we're you you're he she they it it's its this "
    "that these those there here my our your his her their the a an what why how when "
    "where who which is are was were do does did can could would should will if because "
    "since as"
)
_NOT_IMPERATIVE = frozenset(_NOT_IMPERATIVE_WORDS.split())
_AUXILIARY_WORDS = "will would could can should did do does have had been was were"
_AUXILIARIES = frozenset(_AUXILIARY_WORDS.split())


def detect_instructions(text: str) -> list[ProfileUpdate]:
    """Return the profile updates ``text`` explicitly asks for, in the order found."""
    updates: list[ProfileUpdate] = []
    for sentence in sentences(text):
        if ONE_OFF.search(sentence):
            continue  # "for this email only, be formal": a request for one answer
        standing = False  # "from now on" covers the rest of its sentence
        for raw in _CONNECTIVES.split(sentence.rstrip("?")):
            clause, marked = _strip(raw.strip())
            standing = standing or marked
            for update in _detect_clause(raw, clause, standing):
                if update not in updates:
                    updates.append(update)
    return updates


def sentences(text: str) -> list[str]:
    """``text`` without quoted passages (mentioned, not meant), cut into sentences.

    Each sentence keeps a final ``?`` if it had one (a question asks, it rarely instructs).
    """
    text = re.sub(r"\btl;dr\b", "tldr", _QUOTED.sub(" … ", text), flags=_I)  # not a sentence end
    out: list[str] = []
    start = 0
    for m in _SENTENCES.finditer(text):
        out.append(text[start : m.start()] + ("?" if "?" in m.group(0) else ""))
        start = m.end()
    out.append(text[start:])
    return [s for s in out if s.strip(" ?")]


def detect_in_clause(raw: str, standing: bool = False) -> tuple[list[ProfileUpdate], str, bool]:
    """The rules' updates for one clause, the clause without lead-ins, and whether it stands.

    ``standing`` says the clause's sentence was already marked "from now on".
    """
    clause, marked = _strip(raw.strip())
    standing = standing or marked
    return _detect_clause(raw, clause, standing), clause, standing


def _strip(clause: str) -> tuple[str, bool]:
    """``clause`` without lead-ins and trailing politeness, and whether it was standing."""
    standing = False
    previous = None
    while previous != clause:
        previous = clause
        stripped = _STANDING_LEAD.sub("", clause, count=1)
        if stripped != clause:
            standing = True
            clause = stripped
        clause = _POLITE_LEAD.sub("", clause, count=1)
    while (trimmed := _TRAILING.sub("", clause)) != clause:
        standing = standing or bool(re.search(r"from now on|going forward|future", clause, _I))
        clause = trimmed
    return clause.strip(" ,:-"), standing


def _detect_clause(raw: str, clause: str, standing: bool) -> list[ProfileUpdate]:
    if not clause:
        return []
    if m := _STOP_NAME.match(clause):
        return [ProfileUpdate("preferred_name", "unset", None, "asked to stop using a name")]
    if m := _CALL_ME.match(clause):
        name = name_from(m.group("name"))
        if name:
            reason = f'asked to be called "{name}"'
            return [ProfileUpdate("preferred_name", "set", name, reason, f"call the user {name}")]
        return []
    if m := _LANG_STOP.match(clause):
        return [ProfileUpdate("language", "unset", None, f"asked to stop using {m['lang']}")]
    if m := _LANG_SET.match(clause):
        lang = m.group("lang").capitalize()
        return [ProfileUpdate("language", "set", lang, f"asked for {lang}", f"answer in {lang}")]
    if _EMOJI_OFF.match(clause):
        return [
            ProfileUpdate("formatting.emoji", "set", False, "asked for no emoji", "avoid emoji")
        ]
    if _EMOJI_ON.match(clause):
        return [ProfileUpdate("formatting.emoji", "set", True, "asked for emoji", "use emoji")]
    if _BRIEF.match(clause):
        rule = "keep answers short"
        return [ProfileUpdate("verbosity", "set", "brief", "asked for shorter answers", rule)]
    if _DETAILED.match(clause):
        rule = "give detailed answers"
        return [ProfileUpdate("verbosity", "set", "detailed", "asked for more detail", rule)]
    if _LENGTH_RESET.match(clause):
        return [ProfileUpdate("verbosity", "unset", None, "answer length left to the assistant")]
    if _LISTS_OFF.match(clause):
        return [
            ProfileUpdate("formatting.lists", "set", False, "asked for no lists", "avoid lists")
        ]
    if _LISTS_ON.match(clause):
        rule = "use bullet lists"
        return [ProfileUpdate("formatting.lists", "set", True, "asked for lists", rule)]
    if _MARKDOWN_OFF.match(clause):
        rule = "write plain text without markdown"
        return [ProfileUpdate("formatting.markdown", "set", False, "asked for plain text", rule)]
    if _MARKDOWN_ON.match(clause):
        rule = "format answers with markdown"
        return [ProfileUpdate("formatting.markdown", "set", True, "asked for markdown", rule)]
    if m := _FORMAL.match(clause):
        value = "formal" if m.group("f") else "casual"
        return [ProfileUpdate("formality", "set", value, f"asked to be {value}", f"be {value}")]
    if _TONE_STOP.match(clause):
        return [ProfileUpdate("tone", "unset", None, "asked to drop the tone")]
    if m := _TONE_LIKE.match(clause):
        tone = f"like {m.group('tone').lower()}"
        return [ProfileUpdate("tone", "set", tone, f"asked to talk {tone}", f"talk {tone}")]
    if m := _TONE_ADJ.match(clause):
        tone = (m.group("tone") or m.group("tone2")).lower()
        return [ProfileUpdate("tone", "set", tone, f"asked for a {tone} tone", f"be {tone}")]
    if m := _FORGET.match(clause):
        what = m.group("what").strip(" .!?")
        return [ProfileUpdate("memories", "forget", what, f'asked to forget "{what}"')]
    if m := _STOP_RULE.match(clause):
        about = (m.group("gerund") or m.group("about")).strip(" .!?")
        return [ProfileUpdate("instructions", "remove", about, f'asked to stop "{about}"')]
    return _standing_rule(raw, clause, standing)


def _standing_rule(raw: str, clause: str, standing: bool) -> list[ProfileUpdate]:
    """A free-form standing rule: "from now on end with a question", "never apologize"."""
    words = clause.split()
    if not words:
        return []
    first = words[0].lower()
    negated = first in ("never", "don't", "dont") or clause.lower().startswith("do not")
    if not (standing or (negated and first == "never")):
        return []
    if clause.lower().startswith(("never mind", "nevermind")):
        return []
    if first in _NOT_IMPERATIVE or (not first.isalpha() and not negated):
        return []
    if len(words) < 2 or (raw.rstrip().endswith("?") and not standing):
        return []
    second = words[1].strip(",.!?")
    if negated and (not second.islower() or second in _AUXILIARIES):
        return []  # "…, never Windows", "never will": not a command
    rule = clause.rstrip(" .!?")
    rule = rule[:1].upper() + rule[1:]
    return [ProfileUpdate("instructions", "add", rule, "standing instruction", rule)]


def name_from(raw: str) -> str | None:
    """The name in "call me <raw>", cut at the first word that is not part of a name."""
    kept: list[str] = []
    for word in raw.split():
        bare = word.strip(".,!?;:")
        stop = bare.lower() in _NAME_STOP and not bare[:1].isupper()
        if not bare or stop or bare.lower() in ("and", "or", "but"):
            break
        if kept and word[:1].islower() and raw[:1].isupper():
            break  # "Captain and answer…": a capitalised name ends at a lowercase word
        if word[:1].islower() and bare.lower().endswith("ly"):
            break  # "address me formally": a manner, not a name
        kept.append(word.rstrip(",!?;:") if bare.lower() in _TITLES else bare)
        if bare != word and bare.lower() not in _TITLES:
            break  # punctuation ends the name
    if not kept:
        return None
    name = " ".join(kept)
    return name if any(c.isupper() for c in name) else name.title()
