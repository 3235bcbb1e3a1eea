"""Experiments on live traffic: arms, deterministic assignment, and what an arm changes.

An experiment splits eligible users between arms by weight. Assignment is a hash of the
experiment's id and the user's id, so it needs no table, is the same in every process, and
sticks for the experiment's life (arms and weights cannot change after creation). The
``load_context`` node asks the :class:`ExperimentSource` for the user's arms and applies
their settings to the turn; the arm is recorded on the turn (an exposure) and reported in
``attune.experiments``.

Everything here is pure: the store (``memory.records.experiments``) and the statistics
(``evals.experiment_stats``) live elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from graph.config import GraphSettings
from graph.routing import AUTO_MODEL, LOGICAL_MODELS
from graph.state import GenerationParams

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,200}$")]
"""An id, adapter, prompt or version name: letters, digits and ``_.@-``."""

GRAPH_KEYS = (
    "recall_k",
    "memory_token_budget",
    "known_token_budget",
    "profile_token_budget",
    "history_token_budget",
)
"""Arm settings that override :class:`GraphSettings` fields of the same name."""

TURN_PROMPTS = ("system",)
"""The prompts a turn renders, whose versions an arm may set (the others run offline)."""

GENERATION_KEYS = ("temperature", "top_p", "max_tokens")
"""Arm settings that set generation parameters the client did not send."""


class ArmSettings(BaseModel):
    """What an arm changes for its users' turns; unset fields keep the service's value."""

    model_config = ConfigDict(extra="forbid")

    prompt_version: Name | None = Field(default=None, description="The system prompt's version.")
    prompt_versions: dict[Name, Name] | None = Field(
        default=None, description="Any prompt's version, by prompt name (system included)."
    )
    adapters: Literal["on", "off"] | None = Field(
        default=None, description="off: serve the base model even where an adapter exists."
    )
    adapter: Name | None = Field(
        default=None,
        description="A specific adapter version (a group's), tried before the user's own.",
    )
    model: str | None = Field(
        default=None, description=f"The logical model a turn asks for: one of {LOGICAL_MODELS}."
    )
    recall_k: int | None = Field(default=None, ge=0, le=50)
    memory_token_budget: int | None = Field(default=None, ge=0, le=100_000)
    known_token_budget: int | None = Field(default=None, ge=0, le=100_000)
    profile_token_budget: int | None = Field(default=None, ge=0, le=100_000)
    history_token_budget: int | None = Field(default=None, ge=64, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)

    @field_validator("model")
    @classmethod
    def _logical(cls, value: str | None) -> str | None:
        if value is not None and value not in LOGICAL_MODELS:
            raise ValueError(f"model must be one of {', '.join(LOGICAL_MODELS)}")
        return value

    def keys(self) -> set[str]:
        """The settings this arm sets (a prompt version counts per prompt name)."""
        out = {k for k, v in self.model_dump(exclude_none=True).items() if k != "prompt_versions"}
        out |= {f"prompt:{name}" for name in self.prompt_versions or {}}
        if "prompt_version" in out:
            out = (out - {"prompt_version"}) | {"prompt:system"}
        return out

    def versions(self) -> dict[str, str]:
        """The prompt versions this arm sets, by prompt name."""
        out = dict(self.prompt_versions or {})
        if self.prompt_version is not None:
            out["system"] = self.prompt_version
        return out


class Arm(BaseModel):
    """One arm: a name, a weight, and its settings (control usually sets none)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    weight: float = Field(gt=0.0, le=1_000_000.0)
    settings: ArmSettings = Field(default_factory=ArmSettings)


class Eligibility(BaseModel):
    """Who may enter: everyone (both unset), the listed users, or one group's members."""

    model_config = ConfigDict(extra="forbid")

    users: list[Name] | None = Field(default=None, min_length=1, max_length=10_000)
    group: Name | None = None

    def admits(self, user_id: str, group_id: str | None) -> bool:
        """Whether the user is eligible."""
        if self.users is not None and user_id not in self.users:
            return False
        return self.group is None or self.group == group_id


class Assignment(TypedDict):
    """A user's arm in one running experiment, as recorded on a turn."""

    experiment_id: str
    name: str
    arm: str
    settings: dict[str, Any]


class RunningExperiment(Protocol):
    """What assignment needs to know of an experiment (a ``memory.records`` row)."""

    id: str
    name: str
    arms: list[dict[str, Any]]
    eligibility: dict[str, Any]
    stopped_arms: dict[str, Any]

    def is_live(self, now: datetime) -> bool:
        """Started, not ended, not stopped."""
        ...


class ExperimentSource(Protocol):
    """The running experiments, and where exposures are recorded (``load_context``)."""

    async def assign(self, user_id: str, group_id: str | None) -> list[Assignment]:
        """The user's arms now (nothing is written: a preview asks too)."""
        ...

    async def expose(
        self, turn_id: str, user_id: str, arms: Sequence[Assignment], *, failed: bool = False
    ) -> None:
        """Record that turn ``turn_id`` ran in ``arms`` (after its reply), or failed."""
        ...


def bucket(experiment_id: str, user_id: str) -> float:
    """The user's fixed point in [0, 1) for this experiment (SHA-256 of both ids)."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_arm(experiment_id: str, user_id: str, arms: Sequence[Arm]) -> Arm:
    """The user's arm: their :func:`bucket` on the arms' cumulative weights."""
    point = bucket(experiment_id, user_id) * sum(a.weight for a in arms)
    for arm in arms:
        point -= arm.weight
        if point < 0:
            return arm
    return arms[-1]


def assignments(
    experiments: Sequence[RunningExperiment], user_id: str, group_id: str | None, now: datetime
) -> list[Assignment]:
    """The user's arms in the live experiments they are eligible for.

    A user whose arm was stopped is in none (they get the service's own settings, and
    their turns count for no arm).
    """
    out: list[Assignment] = []
    for exp in experiments:
        if not exp.is_live(now):
            continue
        if not Eligibility.model_validate(exp.eligibility).admits(user_id, group_id):
            continue
        arm = choose_arm(exp.id, user_id, [Arm.model_validate(a) for a in exp.arms])
        if arm.name in exp.stopped_arms:
            continue
        settings = arm.settings.model_dump(exclude_none=True)
        out.append(Assignment(experiment_id=exp.id, name=exp.name, arm=arm.name, settings=settings))
    return out


def merged(assigned: Sequence[Assignment]) -> ArmSettings:
    """One set of settings from the user's arms (experiments never share a setting)."""
    values: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for a in assigned:
        s = ArmSettings.model_validate(a["settings"])
        versions.update(s.versions())
        values.update(
            s.model_dump(exclude_none=True, exclude={"prompt_version", "prompt_versions"})
        )
    return ArmSettings(**values, prompt_versions=versions or None)


def graph_settings(base: GraphSettings, arm: ArmSettings) -> GraphSettings:
    """``base`` with the arm's prompt versions, recall and budget settings."""
    update: dict[str, Any] = {k: getattr(arm, k) for k in GRAPH_KEYS if getattr(arm, k) is not None}
    versions = arm.versions()
    if versions:
        update["prompt_versions"] = {**base.prompt_versions, **versions}
    return base.model_copy(update=update) if update else base


def generation_params(
    params: GenerationParams, arm: ArmSettings, sent: Sequence[str]
) -> GenerationParams:
    """``params`` with the arm's generation settings, except those the client sent."""
    out = GenerationParams(**params)
    for key in GENERATION_KEYS:
        value = getattr(arm, key)
        if value is not None and key not in sent:
            out[key] = value  # type: ignore[literal-required]
    if arm.model is not None and params.get("model", AUTO_MODEL) == AUTO_MODEL:
        out["model"] = arm.model
    return out


def conflicts(new: Sequence[Arm], running: Mapping[str, Sequence[Arm]]) -> dict[str, set[str]]:
    """Settings ``new``'s arms share with each running experiment's (by name).

    Two live experiments may not vary the same setting: a turn in both would not say which
    one its figures belong to.
    """
    mine = set().union(*(a.settings.keys() for a in new))
    out: dict[str, set[str]] = {}
    for name, arms in running.items():
        shared = mine & set().union(*(a.settings.keys() for a in arms))
        if shared:
            out[name] = shared
    return out


def adapters_for(
    arm: ArmSettings,
    *,
    user_id: str,
    group_id: str | None,
    adapter: str | None,
    group_adapter: str | None,
) -> tuple[str | None, str | None]:
    """The user's and group's adapters as the arm has them.

    ``adapters: off`` drops both; ``adapter`` replaces the user's own, but only with an
    adapter of this user or their group (named ``<owner id>-…``): an arm never serves one
    user another's adapter.
    """
    if arm.adapters == "off":
        return None, None
    if arm.adapter is not None:
        owners = [user_id, *([group_id] if group_id else [])]
        if any(arm.adapter.startswith(f"{owner}-") for owner in owners):
            return arm.adapter, group_adapter
    return adapter, group_adapter
