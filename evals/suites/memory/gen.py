"""How the synthetic memory dataset is made: profiles, life plans, small talk, questions.

Every statement of a fact is a user turn made from a template in ``memory_phrases``; the
template's answer-bearing fields (``FIELD_FACTS``) tag the turn with the facts it states,
and a question's gold is every turn tagged with the facts it asks about. Only
``evals.suites.memory.data.generate`` should call this module.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from evals.suites.memory import phrases as P
from evals.suites.memory.data import DataSession, DataTurn, DataUser, Question

FIELD_FACTS = {
    **dict.fromkeys(["role0", "a_role0", "emp0"], "job0"),
    **dict.fromkeys(["role1", "a_role1", "emp1"], "job1"),
    **dict.fromkeys(["cuisine", "dish"], "cuisine"),
    **dict.fromkeys(["flight", "flight_time"], "flight"),
    **dict.fromkeys(["flight2", "flight2_time", "work_city"], "flight2"),
    **dict.fromkeys(["book", "author"], "book"),
    **{f: f for f in ["city0", "partner", "sib", "kid_age", "parent_job", "dislike", "lang"]},
    **{f: f for f in ["trip", "trip_month", "landlord", "doctor", "plumber"]},
    **{f: f for f in ["colleague", "colleague2", "colleague3"]},
    "new": "{new}",  # the city of a move: the fact (city1, city2) is named by the caller
    "pet0": "pet0name",
    "breed0": "pet0breed",
    "pet1": "pet1name",
    "breed1": "pet1breed",
    "allergen": "allergy",
    "dentist_date": "dentist",
    "wedding_date": "wedding",
    "race_date": "race",
    "code": "booking",
    "code2": "rental",
    "code3": "tickets",
}
"""A template field that carries an answer → the fact a turn using it states."""

ACKS = ["Noted!", "Thanks for telling me.", "Good to know.", "That's great to hear.", "Got it."]


@dataclass
class _Said:
    """A turn before it gets an id: who, what, and which facts it states."""

    role: str
    text: str
    facts: frozenset[str] = frozenset()


@dataclass
class _Life:
    """One user's profile and their conversation plan: session → exchanges."""

    rng: random.Random
    profile: dict[str, str]
    n_sessions: int
    plan: dict[int, list[list[_Said]]] = field(default_factory=dict)

    def say(
        self,
        session: int,
        template: str,
        ack: str | None = None,
        facts: Sequence[str] = (),
        **extra: str,
    ) -> None:
        """Plan a user statement and the assistant's reply in ``session``."""
        reply = _Said("assistant", ack or self.rng.choice(ACKS))
        self.plan.setdefault(session, []).append([self.user(template, facts, **extra), reply])

    def user(self, template: str, facts: Sequence[str] = (), **extra: str) -> _Said:
        """A user turn from ``template``; the answer-bearing fields it uses become facts."""
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        stated = {FIELD_FACTS[n] for n in used if n in FIELD_FACTS}
        if "{new}" in stated:
            stated = (stated - {"{new}"}) | {extra.pop("city_fact")}
        text = template.format(**{**self.profile, **extra})
        return _Said("user", text, frozenset(stated | set(facts)))


def _a(noun: str) -> str:
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


def _code(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + str(
        rng.randint(10_000, 99_999)
    )


def _flight(rng: random.Random) -> str:
    return f"{rng.choice(P.AIRLINES)} {rng.randint(100, 9899)}"


def _clock(rng: random.Random) -> str:
    return f"{rng.randint(5, 22):02d}:{rng.choice(['05', '20', '35', '50'])}"


def _date(at: datetime, rng: random.Random) -> str:
    day = at + timedelta(days=rng.randint(20, 90))
    return f"{P.MONTHS[day.month - 1]} {day.day}"


def _profile(rng: random.Random, i: int, picks: Mapping[str, list[Any]]) -> dict[str, str]:
    """User ``i``'s profile: every template field (unique names come from ``picks``)."""
    species0 = rng.choice(list(P.PETS))
    species1 = species0 if rng.random() < 0.5 else rng.choice(list(P.PETS))
    him, his = rng.choice([("him", "his"), ("her", "her")])
    kid_rel = rng.choice(["niece", "nephew"])
    cuisine = rng.choice(list(P.CUISINES))
    landlord, doctor, plumber = rng.sample(P.RARE_SURNAMES, 3)
    colleagues = rng.sample(P.RARE_COLLEAGUES, 3)
    role0, role1 = picks["roles"][2 * i : 2 * i + 2]
    return {
        "name": picks["names"][i],
        "partner": picks["partners"][i],
        "partner_rel": rng.choice(["wife", "husband", "girlfriend", "boyfriend", "partner"]),
        "sib": picks["siblings"][i],
        "sib_rel": rng.choice(["sister", "brother"]),
        "kid_rel": kid_rel,
        "kid": rng.choice(P.KIDS[kid_rel]),
        "kid_age": str(rng.randint(3, 12)),
        "parent_rel": rng.choice(["mum", "dad"]),
        "parent_job": rng.choice(P.PARENT_JOBS),
        "species0": species0,
        "breed0": rng.choice(P.PETS[species0]),
        "pet0": picks["pets"][2 * i],
        "pron0": him,
        "pron0_pos": his,
        "species1": species1,
        "breed1": rng.choice(P.PETS[species1]),
        "young1": P.YOUNG[species1],
        "pet1": picks["pets"][2 * i + 1],
        "pron1": rng.choice(["he", "she"]),
        "role0": role0,
        "a_role0": _a(role0),
        "emp0": picks["employers"][2 * i],
        "role1": role1,
        "a_role1": _a(role1),
        "emp1": picks["employers"][2 * i + 1],
        "cuisine": cuisine,
        "dish": P.CUISINES[cuisine],
        "dislike": rng.choice(P.DISLIKES),
        "allergen": rng.choice(P.ALLERGENS),
        "lang": rng.choice(P.LANGUAGES),
        "trip": picks["trips"][i],
        "trip_month": rng.choice(P.MONTHS),
        "landlord": landlord,
        "doctor": doctor,
        "plumber": plumber,
        "colleague": colleagues[0],
        "colleague2": colleagues[1],
        "colleague3": colleagues[2],
        "code": _code(rng),
        "code2": _code(rng),
        "code3": _code(rng),
        "hotel_city": rng.choice(P.CITIES),
        "work_city": rng.choice(P.CITIES),
        "book": picks["books"][i][0],
        "author": picks["books"][i][1],
        "flight": _flight(rng),
        "flight_time": _clock(rng),
        "flight2": _flight(rng),
        "flight2_time": _clock(rng),
        "sport": rng.choice(list(P.SPORTS)),
        "instrument": rng.choice(list(P.INSTRUMENTS)),
        "craft": rng.choice(list(P.CRAFTS)),
    }


def _plan_life(life: _Life, starts: Sequence[datetime], cities: Sequence[str]) -> None:
    """Place every fact statement in a session; changes happen in order."""
    rng, p, n = life.rng, life.profile, life.n_sessions
    pick = rng.choice
    life.say(0, pick(P.S_CITY0))
    life.say(rng.randint(0, 1), pick(P.S_JOB0), pick(P.ACK_JOB0))
    life.say(rng.randint(0, 2), pick(P.S_PET0), pick(P.ACK_PET))
    life.say(rng.randint(1, 3), pick(P.S_PARTNER))
    life.say(rng.randint(1, 4), pick(P.S_SIB))
    moves = [rng.randint(int(n * 0.35), int(n * 0.5))]
    if len(cities) > 2:
        moves.append(rng.randint(int(n * 0.75), n - 2))
    for i, s in enumerate(moves, start=1):
        life.say(s, pick(P.S_MOVE), pick(P.ACK_MOVE), new=cities[i], city_fact=f"city{i}")
    job_change = rng.randint(int(n * 0.45), int(n * 0.6))
    life.say(job_change, pick(P.S_JOB1), pick(P.ACK_JOB1))
    died = rng.randint(int(n * 0.5), int(n * 0.6))
    life.say(died, pick(P.S_PET_DIED), pick(P.ACK_PET_DIED), facts=["pet_died"])
    adopt = died + rng.randint(1, 2)
    if rng.random() < 0.5:
        life.say(adopt, pick(P.S_PET1), pick(P.ACK_PET))
    else:  # the name comes in a second message, after the assistant asks
        name_it = pick(P.S_PET1_NAME).replace("{Pron1}", p["pron1"].capitalize())
        life.plan.setdefault(adopt, []).append(
            [
                life.user("So... we got a new {young1}! I think we were ready."),
                _Said("assistant", "Oh, how exciting! What's the little one called?"),
                life.user(name_it),
                _Said("assistant", pick(P.ACK_PET)),
            ]
        )
    life.say(moves[0] + rng.randint(0, 2), pick(P.S_LANDLORD))
    life.say(min(job_change + rng.randint(1, 3), n - 1), pick(P.S_COLLEAGUE))
    life.say(min(job_change + rng.randint(1, 3), n - 1), pick(P.S_COLLEAGUE3))
    life.say(rng.randint(0, job_change - 1), pick(P.S_COLLEAGUE2))
    for templates in (P.S_DOCTOR, P.S_PLUMBER, P.S_TICKETS, P.S_WORK_FLIGHT):
        life.say(rng.randint(1, n - 1), pick(templates))
    trip_at = rng.randint(2, n - 4)
    life.say(trip_at, pick(P.S_TRIP))
    life.say(trip_at + rng.randint(1, 3), pick(P.S_BOOKING))
    life.say(trip_at + rng.randint(1, 3), pick(P.S_FLIGHT))
    life.say(trip_at + rng.randint(1, 3), pick(P.S_RENTAL))
    hobbies = {
        "sport": P.SPORTS[p["sport"]],
        "instrument": P.INSTRUMENTS[p["instrument"]],
        "craft": P.CRAFTS[p["craft"]],
    }
    for fact, text in hobbies.items():
        life.say(rng.randint(0, n - 1), text.replace("{", "{{"), facts=[fact])
    for templates in (P.S_CUISINE, P.S_DISLIKE, P.S_ALLERGY, P.S_LANG, P.S_KID, P.S_PARENT):
        life.say(rng.randint(0, n - 1), pick(templates))
    life.say(rng.randint(0, n - 1), pick(P.S_BOOK))
    for key, templates in (
        ("dentist_date", P.S_DENTIST),
        ("wedding_date", P.S_WEDDING),
        ("race_date", P.S_RACE),
    ):
        s = rng.randint(1, n - 1)
        p[key] = _date(starts[s], rng)
        life.say(s, pick(templates))


def _smalltalk(rng: random.Random, profile: Mapping[str, str], taken: set[str]) -> list[_Said]:
    """A distractor exchange; some are about other people's pets, moves, jobs, allergies."""
    user_t, reply_t = rng.choice(P.SMALLTALK)
    values = {k: rng.choice(v) for k, v in P.FILL.items()}
    species = rng.choice(list(P.PETS))
    values |= {
        "friend": rng.choice(P.FRIENDS),
        "other_breed": rng.choice(P.PETS[species]),
        "other_pet": rng.choice([n for n in P.PET_NAMES if n not in taken]),
        "other_city": rng.choice([c for c in P.CITIES if c not in taken]),
        "other_role": rng.choice([r for r in P.ROLES if r not in taken]),
        "other_allergen": rng.choice([a for a in P.ALLERGENS if a != profile["allergen"]]),
    }
    return [_Said("user", user_t.format(**values)), _Said("assistant", reply_t.format(**values))]


def _build_user(
    rng: random.Random, i: int, picks: Mapping[str, list[Any]]
) -> tuple[DataUser, list[Question]]:
    key = f"u{i:02d}"
    profile = _profile(rng, i, picks)
    n = rng.randint(14, 18)
    cities = picks["cities"][3 * i : 3 * i + (3 if rng.random() < 0.7 else 2)]
    profile |= {"city0": cities[0], "cities": "|".join(cities)}
    day = datetime(2024, rng.randint(1, 6), rng.randint(1, 28), tzinfo=UTC)
    starts = []
    for _ in range(n):
        starts.append(day.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59)))
        day += timedelta(days=rng.randint(7, 30))
    life = _Life(rng, profile, n)
    _plan_life(life, starts, cities)
    taken = {*cities, profile["pet0"], profile["pet1"], profile["role0"], profile["role1"]}
    facts: dict[str, list[str]] = {}
    sessions = []
    for s in range(n):
        blocks = [_smalltalk(rng, profile, taken) for _ in range(rng.randint(5, 10))]
        for block in life.plan.get(s, []):
            blocks.insert(rng.randint(0, len(blocks)), block)
        sid, at, turns = f"{key}-s{s:02d}", starts[s], []
        for j, said in enumerate(t for b in blocks for t in b):
            at += timedelta(seconds=rng.randint(20, 120))
            tid = f"{sid}-t{j:03d}"
            speaker = profile["name"] if said.role == "user" else None
            turns.append(DataTurn(tid, said.role, said.text, at, speaker))
            for fact in said.facts:
                facts.setdefault(fact, []).append(tid)
        sessions.append(DataSession(sid, starts[s], tuple(turns)))
    user = DataUser(key, profile["name"], tuple(sessions))
    return user, questions_for(rng, key, profile, facts)


def generate_users(rng: random.Random, n_users: int) -> tuple[list[DataUser], list[Question]]:
    """``n_users`` users with their sessions, and the questions about them."""
    picks: dict[str, list[Any]] = {
        "names": rng.sample(P.NAMES, n_users),
        "partners": rng.sample(P.PARTNERS, n_users),
        "siblings": rng.sample(P.SIBLINGS, n_users),
        "pets": rng.sample(P.PET_NAMES, 2 * n_users),
        "roles": rng.sample(P.ROLES, 2 * n_users),
        "employers": rng.sample(P.EMPLOYERS, 2 * n_users),
        "cities": rng.sample(P.CITIES, 3 * n_users),
        "trips": rng.choices(P.TRIPS, k=n_users),
        "books": rng.choices(P.BOOKS, k=n_users),
    }
    users, questions = [], []
    for i in range(n_users):
        user, asked = _build_user(rng, i, picks)
        users.append(user)
        questions.extend(asked)
    return users, questions


def questions_for(
    rng: random.Random, user: str, p: Mapping[str, str], facts: Mapping[str, Sequence[str]]
) -> list[Question]:
    """The questions asked about ``user`` after their last session.

    Args:
        rng: The dataset's random source (picks one phrasing per question).
        user: The user's dataset key.
        p: The user's profile (template fields).
        facts: Fact name → ids of the user turns that state it, oldest first.

    Returns:
        Questions whose gold is every turn stating the answer.
    """
    out: list[Question] = []

    def ask(
        fact: str, category: str, gold: Sequence[str], templates: Sequence[str], answer: str
    ) -> None:
        ids = tuple(dict.fromkeys(t for g in gold for t in facts.get(g, ())))
        if not ids:
            raise AssertionError(f"{user}: no turn states {gold}")
        text = rng.choice(templates).format(**p)
        out.append(Question(f"{user}-q{len(out):02d}", user, text, ids, category, fact, answer))

    cities = p["cities"].split("|")
    last = len(cities) - 1
    ask("home_city", "current", [f"city{last}"], P.Q_CITY_NOW, cities[-1])
    for i in range(1, last + 1):
        before = [t.replace("{new}", cities[i]) for t in P.Q_CITY_BEFORE]
        ask("home_city", "past", [f"city{i - 1}"], before, cities[i - 1])
    ask("home_city", "multi", [f"city{i}" for i in range(last + 1)], P.Q_CITY_ALL, "|".join(cities))
    ask("job", "current", ["job1"], P.Q_ROLE_NOW, p["role1"])
    ask("employer", "current", ["job1"], P.Q_EMP_NOW, p["emp1"])
    ask("employer", "past", ["job0"], P.Q_EMP_BEFORE, p["emp0"])
    ask("pet", "current", ["pet1name"], P.Q_PET_NOW, p["pet1"])
    ask("pet", "current", ["pet1breed"], P.Q_PET_BREED, p["breed1"])
    ask("pet", "past", ["pet0name"], P.Q_PET_LOST, p["pet0"])
    ask("partner", "stable", ["partner"], P.Q_PARTNER, p["partner"])
    ask("family", "stable", ["sib"], P.Q_SIB, p["sib"])
    ask("family", "stable", ["kid_age"], P.Q_KID, p["kid_age"])
    ask("family", "stable", ["parent_job"], P.Q_PARENT, p["parent_job"])
    ask("hobby", "stable", ["sport"], P.Q_SPORT, p["sport"])
    ask("hobby", "stable", ["instrument"], P.Q_INSTRUMENT, p["instrument"])
    ask("hobby", "stable", ["craft"], P.Q_CRAFT, p["craft"])
    ask("food", "stable", ["cuisine"], P.Q_CUISINE, p["cuisine"])
    ask("food", "stable", ["dislike"], P.Q_DISLIKE, p["dislike"])
    ask("allergy", "stable", ["allergy"], P.Q_ALLERGY, p["allergen"])
    ask("language", "stable", ["lang"], P.Q_LANG, p["lang"])
    ask("plan", "stable", ["trip"], P.Q_TRIP, p["trip"])
    ask("plan", "temporal", ["trip_month"], P.Q_TRIP_WHEN, p["trip_month"])
    ask("event", "temporal", ["dentist"], P.Q_DENTIST, p["dentist_date"])
    ask("event", "temporal", ["wedding"], P.Q_WEDDING, p["wedding_date"])
    ask("event", "temporal", ["race"], P.Q_RACE, p["race_date"])
    for who, answer in (
        ("landlord", "my landlord"),
        ("doctor", "my GP"),
        ("plumber", "the plumber"),
    ):
        ask("name", "lexical", [who], [t.replace("{who}", p[who]) for t in P.Q_PERSON], answer)
    for who, answer in (("colleague", "a colleague"), ("colleague2", "a colleague")):
        ask("name", "lexical", [who], [t.replace("{who}", p[who]) for t in P.Q_COLLEAGUE], answer)
    for code, fact, answer in (("code", "booking", f"the {p['hotel_city']} hotel"),
                               ("code2", "rental", "the rental car")):  # fmt: skip
        ask("booking", "lexical", [fact], [t.replace("{c}", p[code]) for t in P.Q_CODE], answer)
    ask("booking", "stable", ["booking"], P.Q_HOTEL_CODE, p["code"])
    for flight, fact in (("flight", "flight"), ("flight2", "flight2")):
        times = [t.replace("{f}", p[flight]) for t in P.Q_FLIGHT_TIME]
        ask("travel", "lexical", [fact], times, p[f"{flight}_time"])
    ask("travel", "stable", ["flight2"], P.Q_WORK_FLIGHT, p["flight2"])
    ask("book", "stable", ["book"], P.Q_BOOK[:1], p["author"])
    ask("book", "lexical", ["book"], P.Q_BOOK[1:], p["book"])
    return out
