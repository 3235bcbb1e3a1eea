"""Bodies of the memory routes: history import, manage-memory and search."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from api.protocol import Text

MAX_SESSIONS = 1_000
MAX_TURNS = 20_000
MAX_TURN_CHARS = 32_000

ClientId = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(str.strip)
]
MemoryKind = Literal["episodic", "summary", "fact", "preference", "instruction"]
EditableKind = Literal["fact", "preference", "instruction"]


def _utc(value: datetime | None) -> datetime | None:
    """Naive times are taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class HistoryTurn(BaseModel):
    """A turn of an imported session."""

    model_config = ConfigDict(extra="forbid")

    id: ClientId
    role: Literal["user", "assistant"]
    speaker: Annotated[str, StringConstraints(max_length=200)] | None = None
    content: Annotated[Text, StringConstraints(min_length=1, max_length=MAX_TURN_CHARS)]
    created_at: Annotated[datetime | None, AfterValidator(_utc)] = None


class HistorySession(BaseModel):
    """An imported session."""

    model_config = ConfigDict(extra="forbid")

    id: ClientId
    started_at: Annotated[datetime, AfterValidator(_utc)]
    turns: Annotated[list[HistoryTurn], Field(min_length=1, max_length=MAX_TURNS)]


class HistoryImport(BaseModel):
    """``POST /v1/users/{id}/history``."""

    model_config = ConfigDict(extra="forbid")

    sessions: Annotated[list[HistorySession], Field(min_length=1, max_length=MAX_SESSIONS)]

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> HistoryImport:
        sessions = [s.id for s in self.sessions]
        if dup := _first_duplicate(sessions):
            raise ValueError(f"session id {dup!r} appears twice in this request")
        turns = [t.id for s in self.sessions for t in s.turns]
        if len(turns) > MAX_TURNS:
            raise ValueError(f"{len(turns)} turns in one request; the limit is {MAX_TURNS}")
        if dup := _first_duplicate(turns):
            raise ValueError(f"turn id {dup!r} appears twice in this request")
        return self


def _first_duplicate(ids: list[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


class HistoryImported(BaseModel):
    """What an import did."""

    sessions: int
    threads_created: int
    turns_imported: int
    turns_skipped: int
    thread_ids: dict[str, str]
    """Session id → Attune thread id."""
    job_id: str | None = None
    """The background distillation of the new turns (``GET /v1/jobs/{id}``); ``None``
    when nothing new was imported."""


class MemoryOut(BaseModel):
    """A memory, with where it came from and when it held."""

    id: str
    kind: str
    text: str
    speaker: str | None
    score: float | None = None
    sources: list[dict[str, str | None]]
    created_at: datetime
    valid_from: datetime
    invalid_at: datetime | None
    superseded_by: str | None


class MemoryPage(BaseModel):
    """A page of memories."""

    data: list[MemoryOut]
    total: int
    limit: int
    offset: int


class MemorySearchResult(BaseModel):
    """Search results, best first."""

    query: str
    data: list[MemoryOut]
    degraded: list[str] = Field(
        default_factory=list, description='["dense"] while the vector index is down.'
    )


class MemoryCreate(BaseModel):
    """``POST /v1/users/{id}/memories``: a memory written by hand."""

    model_config = ConfigDict(extra="forbid")

    kind: EditableKind = "fact"
    text: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class MemoryPatch(BaseModel):
    """``PATCH /v1/users/{id}/memories/{mid}``."""

    model_config = ConfigDict(extra="forbid")

    kind: EditableKind | None = None
    text: (
        Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
        | None
    ) = None

    @model_validator(mode="after")
    def _something(self) -> MemoryPatch:
        if self.kind is None and self.text is None:
            raise ValueError("send at least one of 'text' and 'kind'")
        return self


def memory_out(view: Any) -> MemoryOut:
    """Map a ``memory.service.MemoryView`` to its response body."""
    return MemoryOut.model_validate(view.as_dict())
