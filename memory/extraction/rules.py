"""Deterministic rules that turn one clause of a user's own words into facts and preferences.

The rules are deliberately narrow: a fact must be a first-person, affirmative statement
("I live in Lisbon", "my dog's name is Rex") at the start of its clause, so look-alikes stay
silent: "my friend lives in Rome", "do I live in Rome?", "I don't live in Paris anymore",
"if I lived in Paris". The first rule that fits a clause wins. Every statement names a slot
(``home_city``, ``pet:dog:name``, ``likes:sushi``) so that a later contradicting statement
can retire it; values that hold several at once get the value in the slot
(``speaks:french``, ``allergy:peanuts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from memory.extraction.text import (
    DATE_WORDS,
    FLAGS,
    Kind,
    Statement,
    article,
    cut,
    object_phrase,
    proper_noun,
    says_no_longer,
    slot_key,
    strip_lead,
    words,
)

_Handler = Callable[[re.Match[str]], list[Statement]]

_I = r"i"
_IM = r"(?:i'm|i\s+am|im)"
_ADVERBS = (
    r"(?:(?:really|also|still|now|currently|actually|just|recently|finally|officially|"
    r"definitely|absolutely|totally|truly|genuinely|honestly|kind\s+of|sort\s+of|basically|"
    r"simply|so)\s+)*"
)
_ADV = rf"(?P<adv>{_ADVERBS})"
_SPECIES = (
    r"dog|puppy|pup|cat|kitten|kitty|rabbit|bunny|hamster|guinea\s+pig|parrot|bird|budgie|"
    r"goldfish|fish|turtle|tortoise|horse|snake|lizard|gecko|ferret|labrador|retriever|poodle|"
    r"beagle|terrier|husky|corgi|dachshund|bulldog|pug|chihuahua|spaniel|collie"
)
_SPECIES_ALIAS = {"puppy": "dog", "pup": "dog", "kitten": "cat", "kitty": "cat", "bunny": "rabbit"}
_BREEDS = words(
    "labrador retriever poodle beagle terrier husky corgi dachshund bulldog pug chihuahua "
    "spaniel collie"
)
_PET_ADJ = words(
    "little small big old young new black white brown grey gray ginger rescue senior baby sweet "
    "lazy cute tiny fat female male golden"
)
_JOBS = (
    r"engineer|developer|programmer|designer|teacher|professor|lecturer|student|nurse|doctor|"
    r"physician|surgeon|dentist|pharmacist|vet|veterinarian|lawyer|attorney|accountant|"
    r"architect|scientist|researcher|analyst|consultant|manager|director|chef|cook|baker|waiter|"
    r"waitress|bartender|barista|writer|author|journalist|editor|translator|artist|musician|"
    r"photographer|actor|actress|pilot|driver|electrician|plumber|carpenter|mechanic|farmer|"
    r"firefighter|officer|librarian|therapist|psychologist|economist|entrepreneur|founder|"
    r"freelancer|contractor|intern|cashier|clerk|recruiter|administrator|technician|paramedic|"
    r"coach|tutor|mathematician|physicist|chemist|biologist|statistician|ceo|cto|retiree"
)
_DEMONYMS = words(
    "american british english french german spanish italian portuguese brazilian chinese "
    "japanese korean indian canadian mexican irish scottish dutch swedish polish russian greek "
    "turkish australian catholic jewish muslim christian"
)
_MONTHS = r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"


def _place(slot: str, template: str) -> _Handler:
    def handle(m: re.Match[str]) -> list[Statement]:
        place = proper_noun(m.group("v"))
        if place is None or place.lower() in _DEMONYMS:
            return []
        return [("fact", template.format(place), slot)]

    return handle


def _home_perfect(m: re.Match[str]) -> list[Statement]:
    # "I've lived in Paris" alone is experience, not residence; "... since 2019" is current.
    if not re.search(r"\b(?:since|for)\b", m.string, FLAGS):
        return []
    return _place("home_city", "The user lives in {}.")(m)


def _org(value: str) -> str | None:
    value = cut(value)
    if re.fullmatch(r"(?:myself|me)", value, FLAGS):
        return "myself"
    tokens = value.split()
    if not tokens or len(tokens) > 6:
        return None
    if tokens[0].lower() in ("a", "an", "the"):
        bad = len(tokens) < 2 or tokens[1].lower() in ("moment", "weekend", "weekends", "same")
        return None if bad else value
    return proper_noun(value)


def _employer(org: str | None, prep: str = "at") -> list[Statement]:
    if org is None:
        return []
    if org == "myself":
        return [("fact", "The user is self-employed.", "employer")]
    return [("fact", f"The user works {prep.lower()} {org}.", "employer")]


def _title(job: str) -> str:
    """Lowercase "Software Engineer" but keep "PhD" and "CEO"."""
    return " ".join(w if sum(c.isupper() for c in w) > 1 else w.lower() for w in job.split())


def _works_at(m: re.Match[str]) -> list[Statement]:
    value = m.group("v")
    role = re.search(r"\s+as\s+(?:an?\s+)?(?P<job>[\w\s-]+?)\s*(?:[,;.!]|$)", value, FLAGS)
    out = _employer(_org(value), m.group("prep"))
    if out and role and len(role.group("job").split()) <= 4:
        job = _title(role.group("job"))
        out.append(("fact", f"The user is {article(job)} {job}.", "job"))
    return out


def _job(m: re.Match[str]) -> list[Statement]:
    job = _title(m.group("job"))
    if set(job.split()[:-1]) & {"of", "fan", "bit", "friend", "like", "lot"}:
        return []
    rest = m.groupdict().get("rest") or ""
    at = re.match(r"\s+(?P<prep>at|for)\s+(?P<org>.+)", rest, FLAGS)
    if at is None and cut(rest):
        return []
    out: list[Statement] = [("fact", f"The user is {article(job)} {job}.", "job")]
    org = _org(at.group("org")) if at else None
    if org and job.split()[-1] == "student":
        out.append(("fact", f"The user studies at {org}.", "school"))
    elif at:
        out += _employer(org, at.group("prep"))
    return out


def _age(m: re.Match[str]) -> list[Statement]:
    n = int(m.group("n"))
    if not 0 < n < 120 or cut(m.group("rest")):
        return []
    return [("fact", f"The user is {n} years old.", "age")]


def _birthday(m: re.Match[str]) -> list[Statement]:
    value = m.group("v")
    iso = re.search(r"\((\d{4})-(\d\d)-(\d\d)\)", value)
    if iso:
        day = datetime(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        value = f"{day:%B} {day.day}"
    else:
        value = cut(value)
        if not re.search(rf"\d|\b(?:{_MONTHS})", value, FLAGS) or len(value) > 30:
            return []
    return [("fact", f"The user's birthday is {value}.", "birthday")]


def _born_in(m: re.Match[str]) -> list[Statement]:
    year = re.match(r"((?:19|20)\d\d)\b", m.group("v"))
    if year:
        return [("fact", f"The user was born in {year.group(1)}.", "birth_year")]
    return _place("birthplace", "The user was born in {}.")(m)


def _pet(m: re.Match[str]) -> list[Statement]:
    species = re.sub(r"\s+", " ", m.group("species").lower())
    species = "dog" if species in _BREEDS else _SPECIES_ALIAS.get(species, species)
    groups = m.groupdict()
    if set((groups.get("adj") or "").lower().split()) - _PET_ADJ:
        return []  # "a hot dog", "a cat allergy" are not pets
    rest = groups.get("rest") or ""
    named = re.match(r"\s+(?:named|called)\s+(?P<name>.+)", rest, FLAGS)
    source = named.group("name") if named else groups.get("name")
    if source is None:
        has = f"The user has {article(species)} {species}."
        return [] if cut(rest) else [("fact", has, f"pet:{species}")]
    name = proper_noun(source, max_words=2)
    if name is None:
        return []
    text = f"The user has {article(species)} {species} named {name}."
    return [("fact", text, f"pet:{species}:name")]


def _favorite(m: re.Match[str]) -> list[Statement]:
    thing = re.sub(r"\s+", " ", m.group("thing").lower())
    thing = thing.replace("colour", "color").replace("flavour", "flavor")
    value = object_phrase(m.group("v"))
    if value is None:
        return []
    text = f"The user's favorite {thing} {m.group('be').lower()} {value}."
    return [("preference", text, f"favorite:{thing}")]


_DISLIKE = re.compile(r"hate|dislike|detest|loathe|despise|can|don't|do\s+not|not|sick|tired")
_VERB3 = {"don't": "doesn't", "do": "does", "am": "is", "'m": "is"}


def _like(m: re.Match[str]) -> list[Statement]:
    value = object_phrase(m.group("v"))
    if value is None or m.group("v").lower().startswith(("to think", "to say")):
        return []
    verb = re.sub(r"\s+", " ", m.group("verb").lower())
    head, _, tail = verb.partition(" ")
    adv = re.sub(r"\s+", " ", m.group("adv").lower())
    if m.groupdict().get("be"):
        verb, adv = f"is {adv}{verb}", ""
    elif head in _VERB3:
        verb = " ".join([_VERB3[head], tail]).strip()
    elif not head.startswith("can"):
        verb = head + ("es" if head.endswith("s") else "s") + (" " + tail if tail else "")
    polarity = "dislikes" if _DISLIKE.match(m.group("verb").lower()) else "likes"
    return [("preference", f"The user {adv}{verb} {value}.", f"{polarity}:{slot_key(value)}")]


def _prefer(m: re.Match[str]) -> list[Statement]:
    value = object_phrase(m.group("v"), max_words=10)
    if value is None:
        return []
    if re.search(r"\b(?:short|brief|concise|long|detailed|in-depth)", value, FLAGS) and re.search(
        r"\b(?:answers?|responses?|replies|explanations?)\b", value, FLAGS
    ):
        slot = "response_length"
    else:
        head = (
            value
            if value.lower().startswith("to ")
            else re.split(
                r"\s+(?:over|to|rather\s+than|instead\s+of)\s+", value, maxsplit=1, flags=FLAGS
            )[0]
        )
        slot = f"prefers:{slot_key(head)}"
    adv = re.sub(r"\s+", " ", m.group("adv").lower())
    return [("preference", f"The user {adv}prefers {value}.", slot)]


def _simple(kind: Kind, template: str, slot: str, group: str = "v") -> _Handler:
    def handle(m: re.Match[str]) -> list[Statement]:
        value = object_phrase(m.group(group))
        if value is None:
            return []
        return [(kind, template.format(value), slot.format(slot_key(value)))]

    return handle


def _diet(m: re.Match[str]) -> list[Statement]:
    if cut(m.group("rest")):
        return []
    diet = m.group("diet").lower().replace(" ", "-")
    return [("fact", f"The user is {diet}.", "diet")]


def _status(m: re.Match[str]) -> list[Statement]:
    status = m.group("st").lower()
    rest = m.group("rest")
    to = re.match(r"\s+to\s+(?P<name>.+)", rest, FLAGS)
    if to is None and cut(rest):
        return []
    out: list[Statement] = [("fact", f"The user is {status}.", "marital_status")]
    name = proper_noun(to.group("name"), 3) if to else None
    if name and status == "married":
        out.append(("fact", f"The user is married to {name}.", "partner_name"))
    return out


def _partner(m: re.Match[str]) -> list[Statement]:
    name = proper_noun(m.group("name"), 3)
    if name is None or name.lower() in _DEMONYMS or cut(m.group("name")) != name:
        return []
    return [("fact", f"The user's {m.group('rel').lower()} is named {name}.", "partner_name")]


def _languages(m: re.Match[str]) -> list[Statement]:
    out: list[Statement] = []
    value = re.split(r"[;:()]|\s+(?:but|because|since|so|although|though)\b", m.group("v"))[0]
    for part in re.split(r",\s*(?:and\s+)?|\s+and\s+|\s*&\s*", value):
        part = re.sub(
            r"^(?:fluent|some|a\s+little|a\s+bit\s+of|basic|conversational|good|decent|broken)\s+",
            "",
            part.strip(),
            flags=FLAGS,
        )
        word = (part.split() or [""])[0].rstrip(".!?")
        if not word.isalpha() or not word[:1].isupper() or word.lower() in DATE_WORDS:
            break
        out.append(("fact", f"The user speaks {word}.", f"speaks:{word.lower()}"))
    return out


def _native(m: re.Match[str]) -> list[Statement]:
    lang = m.group("lang")
    if not lang[:1].isupper():
        return []
    return [("fact", f"The user's native language is {lang}.", "native_language")]


def _children(m: re.Match[str]) -> list[Statement]:
    rest = m.group("rest")
    if cut(rest) and not re.match(r"\s+(?:named|called)\b", rest, FLAGS):
        return []
    what = m.group("what").lower()
    plural = what if what.endswith("s") else what + "s"
    slot = f"children:{plural}" if plural in ("sons", "daughters") else "children"
    return [("fact", f"The user has {m.group('n').lower()} {what}.", slot)]


def _rule(pattern: str, handler: _Handler, *, negative: bool = False) -> _Rule:
    return _Rule(re.compile(pattern, FLAGS), handler, negative)


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    handle: _Handler
    negative: bool
    """The rule's verb is itself negative ("don't like"), so "anymore" does not void it."""


_LIKE_VERBS = (
    r"love|like|enjoy|adore|hate|dislike|detest|loathe|despise|can't\s+stand|cannot\s+stand|"
    r"can\s+not\s+stand|don't\s+(?:like|enjoy|care\s+for)|do\s+not\s+(?:like|enjoy|care\s+for)"
)
_BE_PHRASES = (
    r"(?:not\s+)?(?:a\s+(?:big\s+|huge\s+|massive\s+)?fan\s+of|into|fond\s+of)|(?:obsessed|crazy|"
    r"passionate)\s+(?:with|about)|sick\s+of|tired\s+of"
)
# fmt: off
_RULES = [
    _rule(rf"^(?:{_I}|we)\s+{_ADV}(?:live|reside|am\s+living|are\s+living)\s+in\s+(?P<v>.+)$",
          _place("home_city", "The user lives in {}.")),
    _rule(rf"^(?:{_I}|we)\s+{_ADV}(?:moved|relocated)\s+(?:back\s+)?to\s+(?P<v>.+)$",
          _place("home_city", "The user lives in {}.")),
    _rule(rf"^{_IM}\s+{_ADV}(?:based|living)\s+in\s+(?P<v>.+)$",
          _place("home_city", "The user lives in {}.")),
    _rule(r"^(?:i've|i\s+have)\s+(?:been\s+living|lived)\s+in\s+(?P<v>.+)$", _home_perfect),
    _rule(rf"^{_IM}\s+{_ADV}(?:originally\s+)?from\s+(?P<v>.+)$",
          _place("hometown", "The user is originally from {}.")),
    _rule(rf"^{_I}\s+{_ADV}grew\s+up\s+in\s+(?P<v>.+)$",
          _place("hometown", "The user is originally from {}.")),
    _rule(rf"^{_I}\s+was\s+born\s+in\s+(?P<v>.+)$", _born_in),
    _rule(rf"^{_I}\s+was\s+born\s+on\s+(?P<v>.+)$", _birthday),
    _rule(r"^my\s+birthday\s+is\s+(?:on\s+|in\s+)?(?P<v>.+)$", _birthday),
    _rule(rf"^{_I}\s+{_ADV}work\s+as\s+(?:an?\s+)?(?P<job>.+?)(?P<rest>\s+(?:at|for)\s+.+)?$",
          _job),
    _rule(rf"^{_IM}\s+{_ADV}(?:working\s+as\s+)?(?:an?)\s+(?P<job>(?:[\w-]+\s+){{0,3}}?"
          rf"(?:{_JOBS})s?)\b(?P<rest>.*)$", _job),
    _rule(rf"^{_I}\s+{_ADV}work\s+(?P<prep>at|for)\s+(?P<v>.+)$",
          _works_at),
    _rule(rf"^(?:{_I}\s+{_ADVERBS}(?:got\s+a\s+(?:new\s+)?job|started\s+(?:a\s+new\s+job|"
          rf"working))|{_IM}\s+{_ADVERBS}(?:employed|working))\s+(?:at|for|by)\s+(?P<v>.+)$",
          lambda m: _employer(_org(m.group("v")))),
    _rule(r"^my\s+name\s+is\s+(?P<v>.+)$|^my\s+name's\s+(?P<w>.+)$",
          lambda m: [("fact", f"The user's name is {n}.", "name")]
          if (n := proper_noun(m.group("v") or m.group("w"), 3)) else []),
    _rule(rf"^{_IM}\s+(?:now\s+)?(?P<n>\d{{1,3}})(?:\s*(?:years?|yrs?)\s+old|\s*y/?o)?(?P<rest>.*)$",
          _age),
    _rule(rf"^{_I}\s+{_ADV}turned\s+(?P<n>\d{{1,3}})(?P<rest>.*)$", _age),
    _rule(rf"^(?:{_I}\s+{_ADV}(?:have|adopted|got)|i've\s+got|{_I}\s+have\s+got|we\s+have)\s+"
          rf"(?:a|an|one)\s+(?P<adj>(?:[\w-]+\s+){{0,2}}?)(?P<species>{_SPECIES})\b(?P<rest>.*)$",
          _pet),
    _rule(rf"^my\s+(?P<species>{_SPECIES})(?:'s\s+name\s+is|\s+is\s+(?:called|named))\s+"
          rf"(?P<name>.+)$", _pet),
    _rule(r"^my\s+(?:all[-\s]time\s+)?favou?rite\s+(?P<thing>[\w-]+(?:\s+[\w-]+){0,2}?)\s+"
          r"(?P<be>is|are)\s+(?P<v>.+)$", _favorite),
    _rule(rf"^{_I}\s+{_ADV}(?P<verb>{_LIKE_VERBS})\s+(?P<v>.+)$", _like, negative=True),
    _rule(rf"^(?P<be>{_IM})\s+{_ADV}(?P<verb>{_BE_PHRASES})\s+(?P<v>.+)$", _like, negative=True),
    _rule(rf"^{_I}\s+{_ADV}prefer\s+(?P<v>.+)$", _prefer),
    _rule(rf"^{_IM}\s+{_ADV}(?:an?\s+)?(?:strict\s+)?(?P<diet>vegetarian|vegan|pescatarian|"
          rf"pescetarian|keto|gluten[-\s]free|lactose[-\s]free|halal|kosher|paleo)\b(?P<rest>.*)$",
          _diet),
    _rule(rf"^{_IM}\s+{_ADV}(?:(?:very|severely|deathly|mildly|slightly)\s+)?allergic\s+to\s+"
          rf"(?P<v>.+)$", _simple("fact", "The user is allergic to {}.", "allergy:{}")),
    _rule(rf"^{_IM}\s+{_ADV}(?P<v>[\w-]+)\s+intolerant\b",
          _simple("fact", "The user is {} intolerant.", "intolerance:{}")),
    _rule(rf"^{_IM}\s+{_ADV}(?P<st>married|single|divorced|engaged|widowed|separated)\b"
          rf"(?P<rest>.*)$", _status),
    _rule(rf"^{_I}\s+{_ADV}got\s+(?P<st>married|engaged|divorced)\b(?P<rest>.*)$", _status),
    _rule(r"^my\s+(?P<rel>wife|husband|partner|girlfriend|boyfriend|fianc[ée]e?|spouse)"
          r"(?:'s\s+name\s+is|\s+is\s+(?:called|named)|\s+is)\s+(?P<name>.+)$", _partner),
    _rule(rf"^{_I}\s+{_ADV}(?:can\s+)?speak\s+(?P<v>.+)$", _languages),
    _rule(rf"^(?:my\s+(?:native|first|mother)\s+(?:language|tongue)\s+is|{_IM}\s+a\s+native)\s+"
          rf"(?P<lang>\w+)", _native),
    _rule(rf"^(?:{_IM}\s+{_ADVERBS}(?:learning|studying)|{_I}\s+{_ADVERBS}(?:started|began)\s+"
          rf"(?:learning|studying))\s+(?P<v>.+)$",
          _simple("fact", "The user is learning {}.", "learning:{}")),
    _rule(rf"^(?:{_I}\s+have|i've\s+got)\s+(?P<n>a|an|one|two|three|four|five|six|\d)\s+"
          rf"(?P<what>kids?|children|child|sons?|daughters?|twins)\b(?P<rest>.*)$", _children),
]
# fmt: on


def match_facts(clause: str) -> list[Statement]:
    """The facts and preferences one clause states, by the first rule that fits it.

    Args:
        clause: One clause of a user's message, relative dates already resolved.

    Returns:
        ``(kind, text, slot)`` triples; empty when no rule fits or the clause says that
        something stopped being true.
    """
    clause = strip_lead(clause)
    ended = says_no_longer(clause)
    for rule in _RULES:
        match = rule.pattern.match(clause)
        if match is None or (ended and not rule.negative):
            continue
        found = rule.handle(match)
        if found:
            return found
    return []
