"""Bodies of the job, feedback and preference-pair routes (Attune's own, not OpenAI's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.protocol import Id, Text
from memory.pairs import PreferencePair
from memory.records.jobs import Job


class JobOut(BaseModel):
    """A background job and how it is going."""

    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    user_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(job: Job) -> JobOut:
    """The public view of a job (the payload of ids and the worker name stay inside)."""
    return JobOut.model_validate(job, from_attributes=True)


class FeedbackIn(BaseModel):
    """``POST /v1/feedback``: a rating of one of the user's assistant turns."""

    model_config = ConfigDict(extra="forbid")

    turn_id: Id
    rating: Literal["up", "down"]
    edited_text: Text | None = Field(default=None, max_length=32_000)
    """The reply as the user would have written it: becomes the chosen side of a pair."""
    comment: Text | None = Field(default=None, max_length=4000)


class FeedbackOut(BaseModel):
    """The stored feedback and the job that turns it into preference pairs."""

    id: str
    turn_id: str
    rating: str
    edited_text: str | None
    comment: str | None
    created_at: datetime
    job: JobOut


class PairOut(BaseModel):
    """A preference pair: for ``prompt``, ``chosen`` over ``rejected``."""

    id: str
    rule: Literal["edit", "regeneration", "up_vs_down"]
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    prompt_turn_id: str
    sources: dict[str, Any]
    created_at: datetime


def pair_out(pair: PreferencePair) -> PairOut:
    """The public view of a pair."""
    return PairOut.model_validate(pair, from_attributes=True)


class PairPage(BaseModel):
    """A page of preference pairs, newest first."""

    data: list[PairOut]
    total: int
