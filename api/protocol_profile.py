"""Bodies of the persona routes: profile, its history and versions, learned blocks, prompts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from api.protocol import MAX_INT, Id, Text


class FormattingPatch(BaseModel):
    """Formatting preferences: ``true``/``false`` sets one, ``null`` removes it."""

    model_config = ConfigDict(extra="forbid")

    emoji: StrictBool | None = None
    lists: StrictBool | None = None
    markdown: StrictBool | None = None


class InstructionsPatch(BaseModel):
    """Standing instructions to add (texts) and to remove (ids from ``GET .../profile``)."""

    model_config = ConfigDict(extra="forbid")

    add: list[Annotated[Text, StringConstraints(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20
    )
    remove: list[Id] = Field(default_factory=list, max_length=50)


class ProfilePatch(BaseModel):
    """A partial edit. A field given a value is set, given ``null`` removed, absent kept."""

    model_config = ConfigDict(extra="forbid")

    preferred_name: Annotated[Text, StringConstraints(min_length=1, max_length=100)] | None = None
    language: Annotated[Text, StringConstraints(min_length=1, max_length=40)] | None = None
    tone: Annotated[Text, StringConstraints(min_length=1, max_length=100)] | None = None
    formality: Literal["formal", "casual"] | None = None
    verbosity: Literal["brief", "detailed"] | None = None
    formatting: FormattingPatch | None = None
    instructions: InstructionsPatch | None = None
    interests: list[Annotated[Text, StringConstraints(min_length=1, max_length=100)]] | None = (
        Field(default=None, max_length=30)
    )
    """Replaces the whole list."""
    reason: Annotated[Text, StringConstraints(max_length=200)] | None = None
    """Why, for the profile history (default: "edited through the API")."""


class InstructionOut(BaseModel):
    """A standing instruction and where it came from."""

    id: str
    text: str
    source_turn_id: str | None = None
    created_at: str | None = None


class ProfileOut(BaseModel):
    """A user's persona profile."""

    user_id: str
    version: int
    updated_at: datetime | None
    preferred_name: str | None = None
    language: str | None = None
    tone: str | None = None
    formality: str | None = None
    verbosity: str | None = None
    formatting: dict[str, bool] = Field(default_factory=dict)
    instructions: list[InstructionOut] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    style: dict[str, Any] = Field(default_factory=dict)
    """Statistics of the user's own writing; measured, not editable."""


class ProfileChangeOut(BaseModel):
    """One change to one field."""

    version: int
    field: str
    old_value: Any
    new_value: Any
    reason: str
    source_turn_id: str | None
    created_at: datetime


class ProfileHistory(BaseModel):
    """Changes, newest first."""

    changes: list[ProfileChangeOut]


class ProfileVersionOut(BaseModel):
    """The whole profile as it was at one version."""

    version: int
    reason: str
    created_at: datetime
    profile: dict[str, Any]


class RestoreRequest(BaseModel):
    """Which version to make current again (``0``: the empty profile)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=MAX_INT)


class BlockOut(BaseModel):
    """A version of the user's learned instruction block."""

    id: str
    version: int
    status: str
    text: str
    parent_id: str | None
    critique: str | None
    score: float | None
    baseline_score: float | None
    feedback_ids: list[str]
    reason: str
    created_at: datetime
    activated_at: datetime | None


class BlockList(BaseModel):
    """Every version, newest first, and the active one."""

    active_id: str | None
    blocks: list[BlockOut]


class PromptInfo(BaseModel):
    """A prompt template and its versions."""

    name: str
    versions: list[str]
    active: str | None
    """The version turns use now (only the ``system`` prompt is chosen by a setting)."""


class PromptList(BaseModel):
    """Every prompt under ``graph/prompts``."""

    data: list[PromptInfo]


class PromptSource(BaseModel):
    """One version's template text and the variables it uses."""

    name: str
    version: str
    active: bool
    template: str
    variables: list[str]
