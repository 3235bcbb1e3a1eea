"""Bodies of the routes the web app needs: threads, "why this answer", admin lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from api.protocol import Text
from api.protocol_workers import JobOut


class ThreadOut(BaseModel):
    """One thread as a sidebar lists it."""

    id: str
    title: str | None
    created_at: datetime
    last_activity: datetime
    turns: int
    """How many turns (user and assistant) it holds."""


class ThreadPage(BaseModel):
    """A page of threads, the most recently active first."""

    data: list[ThreadOut]
    total: int
    limit: int
    offset: int


class TurnOut(BaseModel):
    """One recorded turn of a thread."""

    id: str
    role: str
    content: str
    created_at: datetime
    external_id: str | None
    reply_to_id: str | None
    """For a reply: the user turn it answers (a regenerated reply answers the same one)."""
    target: str | None
    """For a reply: ``base``, ``user:<adapter>`` or ``group:<adapter>``."""
    prompt_version: str | None
    rating: str | None
    """For a reply: the user's latest vote on it (``up`` or ``down``), if any."""


class ThreadDetail(BaseModel):
    """A thread and its turns, oldest first."""

    thread: ThreadOut
    turns: list[TurnOut]


class TurnLocated(BaseModel):
    """``GET …/turns/{id}``: one turn and the thread it belongs to."""

    thread_id: str
    turn: TurnOut


class ThreadPatch(BaseModel):
    """``PATCH …/threads/{id}``: rename it."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ThreadDeleted(BaseModel):
    """A thread on its way out: one ``delete_turn`` job per turn, then the row."""

    thread_id: str
    jobs: list[JobOut]


class SourceTurn(BaseModel):
    """A turn a memory came from, with where to find it."""

    turn_id: str
    external_id: str | None
    thread_id: str | None
    """``None`` when the turn is gone (deleted since)."""
    role: str | None
    content: str | None


class WhyMemory(BaseModel):
    """A memory the reply's system prompt quoted."""

    id: str
    kind: str
    text: str
    sources: list[SourceTurn]


class WhyArm(BaseModel):
    """An experiment arm the reply ran in."""

    experiment_id: str
    name: str
    arm: str
    status: str


class WhyOut(BaseModel):
    """``GET …/turns/{id}/why``: what a reply was built from, as stored when it ran."""

    turn_id: str
    thread_id: str
    reply_to_id: str | None
    target: str | None
    route_kind: str | None
    """``user``, ``group`` or ``base``: the part of ``target`` before the colon."""
    adapter: str | None
    prompt_version: str | None
    prompt_versions: dict[str, str]
    system_prompt: str | None
    """The system message exactly as sent; ``None`` for replies recorded before prompts
    were kept."""
    messages: list[dict[str, str]]
    """Every message the model was sent, in order."""
    memories: list[WhyMemory]
    experiments: list[WhyArm]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None


class Me(BaseModel):
    """``GET /v1/me``: who the key belongs to."""

    user_id: str | None
    name: str | None
    group_id: str | None
    is_admin: bool


class UserRow(BaseModel):
    """A user as the admin lists them (never their keys)."""

    id: str
    name: str
    group_id: str | None
    group_name: str | None
    adapter_name: str | None
    created_at: datetime


class UserList(BaseModel):
    """``GET /v1/admin/users``."""

    data: list[UserRow]


class GroupRow(BaseModel):
    """A user group."""

    id: str
    name: str
    adapter_name: str | None
    members: int
    created_at: datetime


class GroupList(BaseModel):
    """``GET /v1/admin/groups``."""

    data: list[GroupRow]


class JobList(BaseModel):
    """``GET /v1/admin/jobs``: recent jobs, newest first, and counts by status."""

    data: list[JobOut]
    counts: dict[str, int]


class EvalRunRow(BaseModel):
    """A stored eval run, without its per-case results."""

    id: str
    suite: str
    dataset: str
    primary: str
    aggregates: dict[str, float]
    cases: int
    failed: int
    commit: str
    prompts: dict[str, str]
    created_at: str


class EvalRunList(BaseModel):
    """``GET /v1/admin/eval-runs``."""

    data: list[EvalRunRow]
