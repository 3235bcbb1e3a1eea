"""A deterministic, multi-session synthetic dataset for the memory eval.

Each user talks to the assistant over a year in many sessions: mostly small talk, with
facts about their life stated in passing (home city, job, pets, partner, family, hobbies,
food, allergies, languages, plans, dated events, names and codes). Some facts change: the
user moves (once or twice), changes jobs, loses a pet and adopts another. Questions are
asked "now", after the last session, in other words than the statements used; each names
its gold sources: the external ids of the user turns that state the answer (for a changed
fact the latest statement; for "before X" questions the older one).

The dataset is versioned as a file so that figures stay comparable across changes::

    python -m evals.suites.memory.data --write    # regenerate evals/data/memory_v1.json
    python -m evals.suites.memory.data --check    # the file matches the generator
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evals import DATA_DIR

DATASET_VERSION = "memory_v1"
SEED = 20_260_301
N_USERS = 10
DATA_PATH = DATA_DIR / f"{DATASET_VERSION}.json"


@dataclass(frozen=True)
class DataTurn:
    """One message, with the client id a history import carries."""

    id: str
    role: str
    content: str
    created_at: datetime
    speaker: str | None = None


@dataclass(frozen=True)
class DataSession:
    """A conversation, turns in order."""

    id: str
    started_at: datetime
    turns: tuple[DataTurn, ...]


@dataclass(frozen=True)
class DataUser:
    """A user and their sessions, oldest first."""

    key: str
    name: str
    sessions: tuple[DataSession, ...]

    def turns(self) -> list[DataTurn]:
        """Every turn, oldest first."""
        return [t for s in self.sessions for t in s.turns]

    def to_history_body(self) -> dict[str, Any]:
        """The body of ``POST /v1/users/{id}/history`` that imports this user's sessions."""
        return {
            "sessions": [
                {
                    "id": s.id,
                    "started_at": s.started_at.isoformat(),
                    "turns": [
                        {
                            "id": t.id,
                            "role": t.role,
                            "speaker": t.speaker,
                            "content": t.content,
                            "created_at": t.created_at.isoformat(),
                        }
                        for t in s.turns
                    ],
                }
                for s in self.sessions
            ]
        }


@dataclass(frozen=True)
class Question:
    """A question asked after the user's last session, and the turns that answer it.

    ``category`` is ``current`` (a fact that changed: its latest value), ``past`` (an
    earlier value), ``multi`` (every value over time), ``stable``, ``temporal`` (a dated
    event) or ``lexical`` (the question repeats a rare name or code of the answer).
    """

    id: str
    user: str
    text: str
    gold: tuple[str, ...]
    category: str
    fact: str
    answer: str
    """The expected answer in words (for readers and answer-level scorers)."""


@dataclass(frozen=True)
class MemoryDataset:
    """Users with their histories, and questions about them."""

    version: str
    seed: int
    users: tuple[DataUser, ...]
    questions: tuple[Question, ...]

    def subset(self, users: int) -> MemoryDataset:
        """The first ``users`` users and only their questions (a slice for tests)."""
        keep = self.users[:users]
        keys = {u.key for u in keep}
        qs = tuple(q for q in self.questions if q.user in keys)
        return MemoryDataset(self.version, self.seed, keep, qs)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: each user's history body plus the questions."""
        return {
            "version": self.version,
            "seed": self.seed,
            "users": [{"key": u.key, "name": u.name, **u.to_history_body()} for u in self.users],
            "questions": [
                {
                    "id": q.id,
                    "user": q.user,
                    "text": q.text,
                    "gold": list(q.gold),
                    "category": q.category,
                    "fact": q.fact,
                    "answer": q.answer,
                }
                for q in self.questions
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryDataset:
        """Inverse of ``to_json``."""
        users = tuple(
            DataUser(
                key=u["key"],
                name=u["name"],
                sessions=tuple(
                    DataSession(
                        id=s["id"],
                        started_at=datetime.fromisoformat(s["started_at"]),
                        turns=tuple(
                            DataTurn(
                                id=t["id"],
                                role=t["role"],
                                content=t["content"],
                                created_at=datetime.fromisoformat(t["created_at"]),
                                speaker=t.get("speaker"),
                            )
                            for t in s["turns"]
                        ),
                    )
                    for s in u["sessions"]
                ),
            )
            for u in data["users"]
        )
        questions = tuple(
            Question(
                q["id"],
                q["user"],
                q["text"],
                tuple(q["gold"]),
                q["category"],
                q["fact"],
                q["answer"],
            )
            for q in data["questions"]
        )
        return cls(data["version"], int(data["seed"]), users, questions)


def load(path: Path = DATA_PATH) -> MemoryDataset:
    """Read a dataset file written by ``--write``."""
    return MemoryDataset.from_json(json.loads(path.read_text(encoding="utf-8")))


def dump(dataset: MemoryDataset, path: Path = DATA_PATH) -> None:
    """Write ``dataset`` as compact, stable JSON (one user or question per line)."""
    data = dataset.to_json()
    lines = ["{", f'"version": {json.dumps(data["version"])},', f'"seed": {data["seed"]},']
    for name in ("users", "questions"):
        items = [json.dumps(item, ensure_ascii=False, sort_keys=True) for item in data[name]]
        lines.append(
            f'"{name}": [\n' + ",\n".join(items) + "\n]" + ("," if name == "users" else "")
        )
    lines.append("}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def generate(seed: int = SEED, n_users: int = N_USERS) -> MemoryDataset:
    """Build the dataset; the same ``seed`` always gives the same dataset."""
    from evals.suites.memory.gen import generate_users

    users, questions = generate_users(random.Random(seed), n_users)
    return MemoryDataset(DATASET_VERSION, seed, tuple(users), tuple(questions))


def main(argv: Sequence[str] | None = None) -> int:
    """Write or check the versioned dataset file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"(re)write {DATA_PATH}")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    dataset = generate()
    turns = sum(len(u.turns()) for u in dataset.users)
    summary = f"{len(dataset.users)} users, {turns} turns, {len(dataset.questions)} questions"
    if args.write:
        dump(dataset)
        print(f"wrote {DATA_PATH} ({DATA_PATH.stat().st_size / 1e6:.2f} MB): {summary}")
    elif args.check:
        if load().to_json() != dataset.to_json():
            print(f"{DATA_PATH} is stale: run python -m evals.suites.memory.data --write")
            return 1
        print(f"{DATA_PATH} is current: {summary}")
    else:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
