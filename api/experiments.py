"""Experiments for admins: create (validated), show with per-arm metrics, stop, guard.

Shared by the routes (``api.routes.experiments``) and the CLI (``attune experiments``).
Creation checks everything a turn would otherwise trip on later: the control is an arm,
prompt versions exist, a pinned adapter is a group's and the experiment is limited to that
group, the users and group exist, and no running experiment varies the same setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from adapters.records import AdapterRecord
from api.errors import APIError
from evals.experiment_stats import ArmReport, GuardRail, arm_reports, guard_verdicts
from graph.experiments import TURN_PROMPTS, Arm, Eligibility, conflicts
from graph.prompts import PromptLibrary
from memory.records import experiments as records
from memory.records.experiment_rows import exposed_turns
from memory.records.tables import User, UserGroup, utcnow
from wiring.settings import ExperimentSettings

log = logging.getLogger(__name__)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Time = Annotated[datetime | None, AfterValidator(_utc)]


class ExperimentCreate(BaseModel):
    """A new experiment. Its arms and weights never change once created."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    arms: list[Arm] = Field(min_length=2, max_length=10)
    control: str = Field(
        min_length=1, max_length=64, description="The arm others are tested against."
    )
    eligibility: Eligibility = Field(
        default_factory=Eligibility, description="Who may enter (default: every user)."
    )
    starts_at: Time = Field(default=None, description="Default: now.")
    ends_at: Time = Field(default=None, description="Default: runs until stopped.")


def validate(
    engine: Engine,
    prompts: PromptLibrary,
    *,
    name: str,
    arms: Sequence[Arm],
    control: str,
    eligibility: Eligibility,
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> None:
    """Raise a 4xx :class:`APIError` naming what is wrong with a new experiment."""
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise APIError(422, "arm names must be unique", param="arms")
    if control not in names:
        raise APIError(422, f"control {control!r} is not one of the arms {names}", param="control")
    if ends_at is not None and ends_at <= max(starts_at or utcnow(), utcnow()):
        raise APIError(422, "ends_at must be later than starts_at and now", param="ends_at")
    for i, arm in enumerate(arms):
        _check_prompts(prompts, arm, f"arms[{i}].settings")
    with Session(engine) as session:
        _check_eligibility(session, eligibility)
        for i, arm in enumerate(arms):
            if arm.settings.adapter is not None:
                _check_adapter(session, arm.settings.adapter, eligibility, f"arms[{i}].settings")
    if any(e.name == name for e in records.list_experiments(engine)):
        raise APIError(
            409, f"an experiment named {name!r} exists already", type="conflict_error", param="name"
        )
    running = {e.name: [Arm.model_validate(a) for a in e.arms] for e in records.running(engine)}
    clash = conflicts(arms, running)
    if clash:
        what = "; ".join(f"{n!r} varies {', '.join(sorted(k))}" for n, k in clash.items())
        raise APIError(
            409,
            f"a running experiment varies the same settings ({what}): stop it first, or vary "
            "other settings, so each turn's figures belong to one experiment",
            type="conflict_error",
            param="arms",
        )


def _check_prompts(prompts: PromptLibrary, arm: Arm, where: str) -> None:
    for name, version in arm.settings.versions().items():
        if name not in TURN_PROMPTS:
            raise APIError(
                422,
                f"prompt {name!r} does not run in a turn (only {', '.join(TURN_PROMPTS)} "
                "does): compare its versions offline with `attune eval` instead",
                param=f"{where}.prompt_versions",
            )
        if version not in prompts.versions(name):
            raise APIError(
                422,
                f"prompt {name!r} has no version {version!r} "
                f"(there are: {', '.join(prompts.versions(name))})",
                param=f"{where}.prompt_version",
            )


def _check_eligibility(session: Session, eligibility: Eligibility) -> None:
    if eligibility.group is not None and session.get(UserGroup, eligibility.group) is None:
        raise APIError(422, f"no group {eligibility.group!r}", param="eligibility.group")
    if eligibility.users:
        found = set(session.exec(select(User.id).where(col(User.id).in_(eligibility.users))).all())
        missing = sorted(set(eligibility.users) - found)
        if missing:
            shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
            raise APIError(422, f"no users {shown}", param="eligibility.users")


def _check_adapter(session: Session, name: str, eligibility: Eligibility, where: str) -> None:
    record = session.exec(select(AdapterRecord).where(AdapterRecord.name == name)).first()
    if record is None:
        raise APIError(422, f"no adapter {name!r}", param=f"{where}.adapter")
    if record.owner_kind != "group" or eligibility.group != record.owner_id:
        raise APIError(
            422,
            f"adapter {name!r} can only be pinned in an experiment limited to its group: "
            f"set eligibility.group to {record.owner_id!r}"
            if record.owner_kind == "group"
            else f"adapter {name!r} is one user's: an arm may pin a group's adapter only",
            param=f"{where}.adapter",
        )


def report(
    engine: Engine, experiment: records.Experiment, settings: ExperimentSettings
) -> list[ArmReport]:
    """Per-arm metrics of ``experiment`` (every arm, control first)."""
    arms = [a["name"] for a in experiment.arms]
    ordered = [experiment.control, *(a for a in arms if a != experiment.control)]
    rows = exposed_turns(engine, experiment.id)
    return arm_reports(rows, ordered, experiment.control, rounds=settings.bootstrap_rounds)


def guard_pass(engine: Engine, settings: ExperimentSettings) -> dict[str, dict[str, str]]:
    """Stop the arms past the guard rail in every running experiment; return what stopped.

    Returns:
        Experiment name → arm → reason, for the arms stopped by this pass.
    """
    rail = GuardRail(
        min_turns=settings.guard_min_turns,
        error_margin=settings.guard_error_margin,
        latency_margin=settings.guard_latency_margin,
    )
    stopped: dict[str, dict[str, str]] = {}
    now = utcnow()
    for exp in records.running(engine, now):
        if not exp.is_live(now):
            continue
        verdicts = guard_verdicts(report(engine, exp, settings), exp.control, rail)
        for arm, reason in verdicts.items():
            if arm in exp.stopped_arms:
                continue
            records.stop_arm(engine, exp.id, arm, f"guard rail: {reason}")
            log.warning("experiment %s: arm %s stopped by the guard rail", exp.id, arm)
            stopped.setdefault(exp.name, {})[arm] = reason
    return stopped


@contextlib.asynccontextmanager
async def guard_loop(
    engine: Engine, settings: ExperimentSettings, on_stop: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Run :func:`guard_pass` every ``settings.guard_interval_s`` while the block runs.

    ``on_stop`` is called after a pass that stopped an arm (the server rereads its list).
    """
    if settings.guard_interval_s <= 0:
        yield
        return

    async def loop() -> None:
        while True:
            await asyncio.sleep(settings.guard_interval_s)
            try:
                stopped = await asyncio.to_thread(guard_pass, engine, settings)
            except Exception:  # a failed pass must not end the loop
                log.exception("experiment guard pass failed")
                continue
            if stopped and on_stop is not None:
                on_stop()

    task = asyncio.create_task(loop(), name="experiment-guard")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create(engine: Engine, prompts: PromptLibrary, body: ExperimentCreate) -> records.Experiment:
    """Validate and store a new experiment; raise a 4xx :class:`APIError` naming a fault."""
    validate(
        engine,
        prompts,
        name=body.name,
        arms=body.arms,
        control=body.control,
        eligibility=body.eligibility,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    try:
        return records.create(
            engine,
            name=body.name,
            control=body.control,
            arms=[a.model_dump(mode="json", exclude_none=True) for a in body.arms],
            eligibility=body.eligibility.model_dump(mode="json", exclude_none=True),
            starts_at=body.starts_at,
            ends_at=body.ends_at,
        )
    except records.ExperimentExistsError as exc:  # created by another request meanwhile
        raise APIError(409, str(exc), type="conflict_error", param="name") from exc
