"""Experiment records: the experiments, and which turn ran in which arm (exposures).

Schema changes go through Alembic (migration ``0011``). An experiment's arms, weights and
eligibility never change after creation, so the hash assignment of ``graph.experiments``
stays sticky; stopping it (or one arm, by the guard rail) is recorded with a reason.

An exposure is written when a turn starts in an arm (``load_context``), keyed by the
assistant turn's id: the turn's row, once recorded, says it succeeded; ``status`` says
``error`` when it failed. Exposures hold ids and arm names, never text; they go with their
user (``repo.delete_user``) and their turn (``memory.export.delete_turn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from memory.records.tables import UTCDateTime, new_id, utcnow


class Experiment(SQLModel, table=True):
    """An A/B test on live traffic."""

    __tablename__ = "experiments"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_experiments_name"),)

    id: str = Field(default_factory=lambda: new_id("exp"), primary_key=True, max_length=40)
    name: str = Field(max_length=100)
    control: str = Field(max_length=64)
    arms: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    """:class:`graph.experiments.Arm` documents, in order."""
    eligibility: dict[str, Any] = Field(sa_type=sa.JSON)
    starts_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str | None = Field(default=None, max_length=1000)
    stopped_arms: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """Arm name → ``{"at": iso time, "reason": why}`` for arms stopped alone."""

    def is_live(self, now: datetime) -> bool:
        """Started, not past its end, not stopped."""
        if self.stopped_at is not None or now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at

    def state(self, now: datetime) -> str:
        """``scheduled``, ``running``, ``ended`` or ``stopped``."""
        if self.stopped_at is not None:
            return "stopped"
        if now < self.starts_at:
            return "scheduled"
        return "running" if self.is_live(now) else "ended"


class ExperimentExposure(SQLModel, table=True):
    """One turn that ran in one arm of one experiment."""

    __tablename__ = "experiment_exposures"
    __table_args__ = (sa.Index("ix_exposures_experiment_arm", "experiment_id", "arm"),)

    turn_id: str = Field(primary_key=True, max_length=40)
    """The assistant turn's id (its row exists once the turn is recorded)."""
    experiment_id: str = Field(foreign_key="experiments.id", primary_key=True, max_length=40)
    arm: str = Field(max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    status: str = Field(default="started", max_length=8)
    """``started`` (running, or recorded: see the turn) or ``error``."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ExperimentExistsError(ValueError):
    """An experiment with this name exists already."""


def create(
    engine: Engine,
    *,
    name: str,
    control: str,
    arms: Sequence[dict[str, Any]],
    eligibility: dict[str, Any],
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> Experiment:
    """Store a new experiment (validated by the caller)."""
    row = Experiment(
        name=name,
        control=control,
        arms=list(arms),
        eligibility=eligibility,
        starts_at=starts_at or utcnow(),
        ends_at=ends_at,
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError as exc:
            raise ExperimentExistsError(f"an experiment named {name!r} exists already") from exc
    return row


def list_experiments(engine: Engine) -> list[Experiment]:
    """Every experiment, newest first."""
    with Session(engine) as session:
        return list(
            session.exec(select(Experiment).order_by(col(Experiment.created_at).desc())).all()
        )


def get(engine: Engine, experiment_id: str) -> Experiment | None:
    """The experiment with ``experiment_id`` (or that name), or ``None``."""
    with Session(engine) as session:
        row = session.get(Experiment, experiment_id)
        if row is None:
            row = session.exec(select(Experiment).where(Experiment.name == experiment_id)).first()
        return row


def stop(engine: Engine, experiment_id: str, reason: str) -> Experiment | None:
    """Stop the experiment now (no-op when stopped already); ``None`` if unknown."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(Experiment, experiment_id)
        if row is not None and row.stopped_at is None:
            row.stopped_at, row.stop_reason = utcnow(), reason
            session.add(row)
            session.commit()
        return row


def stop_arm(engine: Engine, experiment_id: str, arm: str, reason: str) -> None:
    """Stop one arm: its users get the service's own settings and count for no arm."""
    with Session(engine) as session:
        row = session.get(Experiment, experiment_id)
        if row is None or arm in row.stopped_arms:
            return
        row.stopped_arms = {**row.stopped_arms, arm: {"at": utcnow().isoformat(), "reason": reason}}
        session.add(row)
        session.commit()


def running(engine: Engine, now: datetime | None = None) -> list[Experiment]:
    """The experiments live at ``now`` (default: now), oldest first."""
    now = now or utcnow()
    with Session(engine) as session:
        rows = session.exec(
            select(Experiment)
            .where(col(Experiment.stopped_at).is_(None))
            .order_by(col(Experiment.created_at))
        ).all()
    return [r for r in rows if r.is_live(now) or r.state(now) == "scheduled"]


def expose(
    engine: Engine, *, turn_id: str, user_id: str, arms: dict[str, str], failed: bool = False
) -> None:
    """Record that ``turn_id`` ran in ``arms`` (experiment id → arm name), or failed."""
    status = "error" if failed else "started"
    with Session(engine) as session:
        for experiment_id, arm in arms.items():
            session.merge(
                ExperimentExposure(
                    turn_id=turn_id,
                    experiment_id=experiment_id,
                    arm=arm,
                    user_id=user_id,
                    status=status,
                )
            )
        session.commit()


def delete_for_user(session: Session, user_id: str) -> None:
    """Remove a user's exposures (with the user)."""
    session.execute(sa.delete(ExperimentExposure).where(col(ExperimentExposure.user_id) == user_id))


def delete_for_turns(session: Session, turn_ids: Sequence[str]) -> None:
    """Remove the exposures of deleted turns."""
    if turn_ids:
        session.execute(
            sa.delete(ExperimentExposure).where(col(ExperimentExposure.turn_id).in_(turn_ids))
        )
