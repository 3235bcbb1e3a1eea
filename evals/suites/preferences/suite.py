"""Preference surfacing: is a preference stated once in the prompt when a question needs it?

Drives the stack ``attune serve`` runs (``wiring.stack``), in process: for each synthetic
user (``evals.suites.preferences.data``) it creates the user, imports ~340 turns of history as
``POST /v1/users/{id}/history`` does, and *at once*, without waiting for anything the import
leaves to the background, previews each of the 20 questions as ``POST /prompt/preview``
does (``TurnRunner.preview``). A
question is surfaced when the composed system prompt holds its preference's evidence word.
Then it waits until every vector is written and every distillation job has run, and asks
again. The composed prompt's length in words is reported beside both figures.

The ``report`` split (topics, phrasings, distractor chats and users never used for tuning)
is the headline; ``tune`` is printed beside it, labelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evals.suites.preferences.data import Split, UserHistory, holds, make_user
from graph.runner import ChatMessage, TurnRequest
from graph.state import GenerationParams
from memory.history import ImportSession, ImportTurn, import_history
from memory.records import jobs, repo
from wiring.settings import Settings
from wiring.stack import Stack, open_stack
from workers import submit

WORD_LIMIT = 600
SPLITS: tuple[Split, ...] = ("report", "seen3", "seen2", "seen", "tune")
LABELS = {
    "report": "report (v4, written blind: headline)",
    "seen3": "seen3 (v3, blind, scored once, then read)",
    "seen2": "seen2 (v2, read while designing extraction)",
    "seen": "seen (v1 held-out half, read while writing rules)",
    "tune": "tune (tuned on)",
}


@dataclass
class Tally:
    """Questions surfaced and prompt lengths, for one split at one moment."""

    asked: int = 0
    surfaced: int = 0
    words: list[int] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    results: list[tuple[str, str, bool, int, str]] = field(default_factory=list)
    """Per question: user, topic, surfaced, prompt words, the question."""

    @property
    def rate(self) -> float:
        """Share of questions whose preference was in the system prompt."""
        return self.surfaced / self.asked if self.asked else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data."""
        words = sorted(self.words) or [0]
        return {
            "asked": self.asked,
            "surfaced": self.surfaced,
            "rate": round(self.rate, 4),
            "words_mean": round(sum(words) / len(words), 1),
            "words_max": words[-1],
            "over_limit": sum(w > WORD_LIMIT for w in words),
        }


@dataclass
class PreferenceReport:
    """Per split, figures straight after the import and once everything is written."""

    mode: str
    users: int
    turns: int
    tallies: dict[tuple[Split, str], Tally] = field(default_factory=dict)

    def tally(self, split: Split, moment: str) -> Tally:
        """The tally of ``split`` at ``moment`` (created on first use)."""
        return self.tallies.setdefault((split, moment), Tally())

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data."""
        return {
            "vectors": self.mode,
            "users_per_split": self.users,
            "turns_per_user_mean": self.turns,
            **{f"{split}/{moment}": t.as_dict() for (split, moment), t in self.tallies.items()},
        }

    def table(self) -> str:
        """A printable table, headline first."""
        rows = []
        for (split, moment), t in sorted(
            self.tallies.items(), key=lambda kv: SPLITS.index(kv[0][0])
        ):
            d = t.as_dict()
            label = LABELS[split]
            rows.append(
                [label, moment, f"{d['surfaced']}/{d['asked']}", f"{d['rate']:.3f}",
                 f"{d['words_mean']:.0f}", str(d["words_max"]), str(d["over_limit"])]
            )  # fmt: skip
        head = (
            f"Preference surfacing: {self.users} users per split, ~{self.turns} imported turns "
            f"each, 20 questions per user; import vectors: {self.mode}; word limit {WORD_LIMIT}"
        )
        cols = ["split", "when", "surfaced", "rate", "words mean", "max", f">{WORD_LIMIT}"]
        misses = [
            f"MISS [{split}/{moment}] {m}"
            for (split, moment), t in self.tallies.items()
            for m in t.misses[:10]
        ]
        widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
            for r in [cols, *rows]
        ]
        return "\n".join([head, *lines, *misses])


async def _probe(stack: Stack, user: UserHistory, uid: str, tally: Tally) -> None:
    for probe in user.probes:
        request = TurnRequest(
            messages=[ChatMessage(role="user", content=probe.question)],
            params=GenerationParams(model="attune", max_tokens=256),
        )
        system = (await stack.runner.preview(uid, request)).system_prompt
        tally.asked += 1
        tally.words.append(len(system.split()))
        surfaced = holds(system, probe.evidence)
        tally.results.append(
            (user.name, probe.topic, surfaced, len(system.split()), probe.question)
        )
        if surfaced:
            tally.surfaced += 1
        else:
            tally.misses.append(f"{user.name} {probe.topic}: {probe.question}")


def _import(stack: Stack, uid: str, user: UserHistory) -> None:
    """Import the user's sessions as ``POST /v1/users/{id}/history`` does.

    Rows and the lexical index now, vectors as ``memory.import_dense`` says, distillation
    in a job; the route's three calls, since ``evals`` may not import ``api``.
    """
    sessions = [
        ImportSession(
            id=str(s["id"]),
            started_at=datetime.fromisoformat(str(s["started_at"])),
            turns=[
                ImportTurn(str(t["id"]), str(t["role"]), str(t["content"]))
                for t in s["turns"]  # type: ignore[attr-defined]
            ],
        )
        for s in user.sessions
    ]
    result = import_history(stack.engine, user_id=uid, sessions=sessions)
    stack.memory.import_turns(result.new_turns)
    submit.distill(stack.jobs, result.new_turns)


async def _settle(stack: Stack, uid: str, within: float = 300.0) -> None:
    """Wait until the user's vectors are written and no job is queued or running."""
    async with asyncio.timeout(within):
        while True:
            busy = [
                *jobs.list_jobs(stack.engine, status="queued"),
                *jobs.list_jobs(stack.engine, status="running"),
            ]
            backlog = await asyncio.to_thread(stack.memory.dense_backlog, uid)
            if not busy and not backlog:
                return
            await asyncio.sleep(0.2)


async def run(
    settings: Settings,
    *,
    users: int = 2,
    progress: bool = False,
    backend: Any = None,
    splits: Sequence[Split] = SPLITS,
) -> PreferenceReport:
    """Score ``users`` users of each split against the stack ``settings`` builds.

    The stack is the one ``attune serve`` runs (``wiring.stack``), embedded worker
    included when configured; ``backend`` replaces the configured chat backend (tests pass
    a scripted one; the preview only counts tokens with it).
    """
    report = PreferenceReport(mode=settings.memory.import_dense, users=users, turns=0)
    turns: list[int] = []
    async with open_stack(settings, backend=backend) as stack:
        for split in splits:
            for index in range(users):
                user = make_user(split, index)
                turns.append(user.turns)
                with stack.store.session() as session:
                    created, _ = repo.create_user(session, name=user.name)
                    session.commit()
                    uid = created.id
                await asyncio.to_thread(_import, stack, uid, user)
                await _probe(stack, user, uid, report.tally(split, "after import"))
                await _settle(stack, uid)
                await _probe(stack, user, uid, report.tally(split, "settled"))
                if progress:
                    print(f"{user.name}: {user.turns} turns", flush=True)
    report.turns = round(sum(turns) / len(turns)) if turns else 0
    return report
