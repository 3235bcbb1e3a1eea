"""What a speaker says about themselves, in the third person, about anyone named.

The narrow rules (:mod:`memory.extraction.rules`) know a few slots (home, job, pets,
likes). This module catches the rest of the durable first-person statements, by grammar
rather than by topic:

* identity and condition: "I'm vegetarian", "I'm lactose intolerant", "I'm learning Japanese";
* possession and circumstance: "I have two cats", "I've got a bad knee";
* habits and stances: "I don't drink alcohol", "I only read science fiction", "I use Linux",
  "I can't stand coffee";
* "my X is Y" and "Y is my favourite X";
* dated events, when the clause carries a date resolved against the turn's time: "I went
  to a support group yesterday (2023-05-07)".

Momentary states ("I'm tired", "I'm trying to …", "I need to …") and questions say nothing
durable and are skipped. Statements are rewritten about ``subject``: "The user" for the
person being served, or a named speaker of an imported conversation ("Caroline"), so facts
about other people are learned too.
"""

from __future__ import annotations

import re

from memory.extraction.text import (
    FLAGS,
    Kind,
    Statement,
    says_no_longer,
    slot_key,
    strip_lead,
    third_person,
    words,
)

_TRANSIENT = words(
    "sorry glad happy sad excited tired busy sure unsure curious trying thinking going planning "
    "looking wondering hoping wanting about here back home done ready free off fine good great "
    "okay ok afraid not just still also feeling getting doing having making taking "
    "starting finishing reading writing watching organising organizing redoing reviewing "
    "working leaving coming heading staying the bored hungry stressed worried nervous confused "
    "annoyed frustrated thrilled grateful thankful proud amazed surprised impressed lucky "
    "gonna up blessed"
)
_LASTING_ING = words("learning training expecting raising saving practising practicing")
_NOT_AN_OBJECT = re.compile(
    r"^(?:you|your|yours|it|it's|this|that|these|those|them|when|how|what|to|a\s+bit|"
    r"a\s+little|\d)\b",
    FLAGS,
)
_HAVE_NOT = re.compile(
    r"^(?:to|got\s+to|a\s+(?:question|quick\s+question|problem|favou?r|feeling|meeting|call|"
    r"look|chat|thought|idea)|no\s+idea|been|had|done|seen|heard|just|never\s+been|an?\s+"
    r"(?:interview|appointment))\b",
    FLAGS,
)
_HABIT_VERBS = (
    r"eat|drink|use|own|play|read|listen\s+to|watch|write|speak|cycle|drive|ride|cook|wear|"
    r"avoid|love|hate|like|dislike|enjoy|prefer|adore|detest|collect|follow|support|shoot|"
    r"practise|practice|run|swim|grow|keep|go|study|teach|code|program|"
    r"can'?t\s+stand|can'?t\s+eat|can'?t\s+drink|cannot\s+eat|cannot\s+drink|can'?t\s+have"
)
_HABIT = re.compile(
    r"^i\s+(?P<neg>don'?t\s+|do\s+not\s+|never\s+)?(?P<adv>(?:(?:really|only|"
    r"mostly|always|usually|basically|just|also|absolutely|totally|mainly|still)\s+)*)"
    r"(?P<verb>" + _HABIT_VERBS + r")\b\s*(?P<rest>.*)$",
    FLAGS,
)
_BE = re.compile(r"^(?:i'?m|i\s+am)\s+(?P<neg>not\s+)?(?P<rest>.+)$", FLAGS)
_HAVE = re.compile(r"^(?:i\s+have|i'?ve\s+got|i\s+have\s+got)\s+(?P<rest>.+)$", FLAGS)
_MY = re.compile(r"^my\s+(?P<what>(?:\w+\s+){0,2}?\w+)\s+(?P<verb>is|are)\s+(?P<rest>.+)$", FLAGS)
_FAVOURITE = re.compile(
    r"^(?P<value>[\w' -]{2,40}?)\s+is\s+(?:definitely\s+|by\s+far\s+)?my\s+"
    r"(?P<fav>favou?rite\s+\w+)(?P<tail>.*)$",
    FLAGS,
)
_PAST_EVENT = re.compile(
    r"^i\s+(?:just\s+|finally\s+|recently\s+)?(?P<verb>went|visited|started|finished|got|bought|"
    r"moved|joined|adopted|painted|ran|attended|signed\s+up|took|made|met|won|lost|launched|"
    r"graduated|began|quit|left|saw|read|wrote|gave|tried|learned|learnt|volunteered|"
    r"travel(?:l)?ed|celebrated|received|applied|completed|organi[sz]ed|hosted|camped|hiked)\b"
    r"(?P<rest>.*)$",
    FLAGS,
)
_SINCE = re.compile(
    r"^i'?ve\s+(?P<what>(?:been\s+\w+ing|never\s+\w+ed|never\s+(?:been|had|eaten|drunk|"
    r"driven|flown|seen|done|touched|smoked|owned))\b.*)$",
    FLAGS,
)
_AFFECTS = re.compile(
    r"^(?P<thing>[a-z][\w' -]{1,30}?)\s+(?P<verb>makes?|gives?|scares?|stress(?:es)?|bores?|"
    r"calms?|relax(?:es)?|upsets?)\s+me\b(?P<rest>.*)$",
    FLAGS,
)
_DATED = re.compile(r"\((?:around\s+)?\d{4}(?:-\d{2}){0,2}\)")
_ES = re.compile(r"(?:s|sh|ch|x|z|o)$")
_MAX_WORDS = 24
_DEGREE = re.compile(
    r"^(?:(?:so|very|really|super|truly|pretty|totally|quite|a\s+bit|rather|extremely|"
    r"incredibly|kinda|kind\s+of|sort\s+of)\s+)+",
    FLAGS,
)
_PRONOUN_SUBJECTS = words("it this that he she they you we which what who there everything")


def self_statements(clause: str, subject: str = "The user") -> list[Statement]:
    """Durable statements ``clause`` makes about its speaker, rewritten about ``subject``.

    ``clause`` is one clause of a statement (not a question), with relative dates already
    resolved (``memory.extraction.dates``); the result is at most one statement, a sentence.
    """
    return [(kind, text.rstrip(" ,;:") + ".", slot) for kind, text, slot in _match(clause, subject)]


def _match(clause: str, subject: str) -> list[Statement]:
    text = strip_lead(clause).strip().rstrip(".!")
    if not text or len(text.split()) > _MAX_WORDS or text.endswith("?") or says_no_longer(text):
        return []
    possessive = f"{subject}'s" if not subject.endswith("s") else f"{subject}'"
    if m := _FAVOURITE.match(text):
        value = m["value"].strip()
        if value.lower().split()[0] in ("i", "it", "that", "this", "what"):
            return []
        said = f"{possessive} {m['fav'].lower()} is {value}{_tail(m['tail'])}"
        return [("preference", said, f"{slot_key(m['fav'])}")]
    if m := _BE.match(text):
        rest = m["rest"]
        bare = _DEGREE.sub("", rest)  # "super thankful" is as passing as "thankful"
        lead = [w.lower().strip(",") for w in bare.split()[:2]] or [""]
        ing = [w for w in lead if w.endswith("ing") and w not in _LASTING_ING]
        named = rest[:1].isupper() and len(rest.split()) <= 2  # "I'm Sam": an introduction
        if m["neg"] or lead[0] in _TRANSIENT or ing or named or _NOT_AN_OBJECT.match(rest):
            return []  # a passing state, an action under way, or a denial
        return [("fact", f"{subject} is {third_person(rest)}", None)]
    if m := _HAVE.match(text):
        if _HAVE_NOT.match(m["rest"]):
            return []
        return [("fact", f"{subject} has {third_person(m['rest'])}", None)]
    if (m := _HABIT.match(text)) and not _NOT_AN_OBJECT.match(m["rest"]):
        verb = m["verb"].lower()
        neg = (m["neg"] or "").strip().lower()
        liking = re.match(r"love|hate|like|dislike|enjoy|prefer|adore|detest|can", verb)
        kind: Kind = "preference" if liking else "fact"
        if not m["rest"].strip():
            return []
        adv = m["adv"] or ""
        if neg in ("", "never"):
            base = verb if neg or verb.startswith("can") else _third(verb)
            phrase = f"{neg + ' ' if neg else ''}{adv}{base}"
        else:
            phrase = f"doesn't {adv}{verb}"
        return [(kind, f"{subject} {phrase} {third_person(m['rest'])}".replace("  ", " "), None)]
    if m := _MY.match(text):
        what = m["what"].lower()
        if what in ("name",):
            return []
        return [("fact", f"{possessive} {what} {m['verb']} {third_person(m['rest'])}", None)]
    if m := _SINCE.match(text):  # "I've been learning Japanese for a year", "I've never flown"
        return [("fact", f"{subject} has {third_person(m['what'])}", None)]
    if (m := _AFFECTS.match(text)) and m["thing"].split()[0].lower() not in _PRONOUN_SUBJECTS:
        said = f"{m['thing']} {m['verb'].lower()} {_object(subject)}{third_person(m['rest'])}"
        return [("preference", said[:1].upper() + said[1:], None)]
    if (m := _PAST_EVENT.match(text)) and _DATED.search(text):
        return [("fact", f"{subject} {m['verb'].lower()}{third_person(m['rest'])}", None)]
    return []


def _object(subject: str) -> str:
    """``subject`` as an object: "The user" → "the user", a name unchanged."""
    return "the user" if subject == "The user" else subject


def _third(verb: str) -> str:
    """The third-person singular of a base verb ("go" → "goes", "listen to" → "listens to")."""
    first, _, rest = verb.partition(" ")
    if first == "do":
        first = "does"
    elif first.endswith("y") and first[-2:-1] not in "aeiou":
        first = first[:-1] + "ies"
    elif _ES.search(first):
        first += "es"
    else:
        first += "s"
    return f"{first} {rest}".strip()


def _tail(tail: str) -> str:
    tail = tail.strip(" ,")
    return f" ({tail})" if tail and len(tail.split()) <= 6 else ""
