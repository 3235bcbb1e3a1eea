"""What the memory service takes and gives: memories to write, memories as callers see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SourceRef:
    """A turn a memory came from."""

    turn_id: str
    external_id: str | None = None


@dataclass(frozen=True)
class NewMemory:
    """A memory to write."""

    kind: str
    text: str
    sources: Sequence[SourceRef] = ()
    speaker: str | None = None
    slot: str | None = None
    thread_id: str | None = None
    created_at: datetime | None = None
    valid_from: datetime | None = None


@dataclass
class MemoryView:
    """A memory as callers see it, with its sources and, from a search, its score."""

    id: str
    kind: str
    text: str
    speaker: str | None
    sources: list[dict[str, str | None]]
    created_at: datetime
    valid_from: datetime
    invalid_at: datetime | None
    superseded_by: str | None
    thread_id: str | None = None
    score: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "speaker": self.speaker,
            "score": self.score,
            "sources": self.sources,
            "created_at": self.created_at.isoformat(),
            "valid_from": self.valid_from.isoformat(),
            "invalid_at": self.invalid_at.isoformat() if self.invalid_at else None,
            "superseded_by": self.superseded_by,
        }
