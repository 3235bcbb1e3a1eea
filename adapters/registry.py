"""The adapter registry: versions, status, lineage, promotion, rollback and retirement.

Keyword-only functions over a SQLModel session; the caller commits. Promoting an adapter
points its owner at it (``User.adapter_name`` or ``UserGroup.adapter_name``), which is
what the turn graph's ``route`` node reads, and publishes it on the serving backend first
(:class:`Publisher`, which every ``adapters.backend.ChatBackend`` is), so a promoted adapter
serves from the next request and one that does not load is never promoted. At most one
adapter per owner is ``promoted``; the one it replaces is retired with the reason
``superseded`` (and released from the backend once the caller commits), and
:func:`rollback` brings the newest superseded one back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event
from sqlmodel import Session, col, func, select

from adapters.errors import AdapterNotFoundError
from adapters.records import AdapterRecord, OwnerKind
from memory.records.tables import User, UserGroup, utcnow

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where promoted adapters serve: the chat backend (``ChatBackend.publish``)."""

    def publish(self, name: str, path: Path) -> None:
        """Make adapter ``name`` in directory ``path`` servable from the next request."""
        ...

    def unpublish(self, name: str) -> bool:
        """Release adapter ``name``; whether it was held."""
        ...


SUPERSEDED = "superseded"
ROLLED_BACK = "rolled back"
DATA_DELETED = "training data deleted"


class RegistryError(ValueError):
    """A registry operation that does not apply (wrong status, unknown owner …)."""


def adapter_name(owner_id: str, kind: str, version: int) -> str:
    """The adapter's name in requests and on disk, e.g. ``usr_ab12…-sft-v3``."""
    return f"{owner_id}-{kind}-v{version}"


def next_version(session: Session, *, owner_kind: OwnerKind, owner_id: str) -> int:
    """One more than the owner's highest adapter version (1 for the first)."""
    latest = session.exec(
        select(func.max(AdapterRecord.version)).where(
            AdapterRecord.owner_kind == owner_kind, AdapterRecord.owner_id == owner_id
        )
    ).one()
    return int(latest or 0) + 1


def promoted(session: Session, *, owner_kind: OwnerKind, owner_id: str) -> AdapterRecord | None:
    """The owner's promoted adapter, or ``None``."""
    return session.exec(
        select(AdapterRecord).where(
            AdapterRecord.owner_kind == owner_kind,
            AdapterRecord.owner_id == owner_id,
            AdapterRecord.status == "promoted",
        )
    ).first()


def by_version(
    session: Session, *, owner_kind: OwnerKind, owner_id: str, version: int
) -> AdapterRecord | None:
    """The owner's adapter of ``version``, or ``None``."""
    return session.exec(
        select(AdapterRecord).where(
            AdapterRecord.owner_kind == owner_kind,
            AdapterRecord.owner_id == owner_id,
            AdapterRecord.version == version,
        )
    ).first()


def list_adapters(
    session: Session, *, owner_kind: OwnerKind, owner_id: str
) -> Sequence[AdapterRecord]:
    """The owner's adapters, newest version first."""
    return session.exec(
        select(AdapterRecord)
        .where(AdapterRecord.owner_kind == owner_kind, AdapterRecord.owner_id == owner_id)
        .order_by(col(AdapterRecord.version).desc())
    ).all()


def register_candidate(
    session: Session,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    kind: str,
    version: int,
    base_model: str,
    dataset_snapshot_id: str | None,
    metrics: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
) -> AdapterRecord:
    """Record a freshly trained adapter as a candidate.

    Idempotent: a second call for the same owner and version returns the existing record
    (a redelivered task). The parent is the owner's promoted adapter at this moment.

    Args:
        session: An open session.
        owner_kind: ``user`` or ``group``.
        owner_id: The owner's id.
        kind: ``sft`` or ``dpo``.
        version: The version reserved for the run (see :func:`next_version`).
        base_model: The base model's id.
        dataset_snapshot_id: The snapshot it was trained on.
        metrics: Training figures.
        hparams: The hyper-parameters used.

    Returns:
        The record (added to the session).
    """
    existing = by_version(session, owner_kind=owner_kind, owner_id=owner_id, version=version)
    if existing is not None:
        return existing
    parent = promoted(session, owner_kind=owner_kind, owner_id=owner_id)
    record = AdapterRecord(
        owner_kind=owner_kind,
        owner_id=owner_id,
        version=version,
        kind=kind,
        name=adapter_name(owner_id, kind, version),
        base_model=base_model,
        dataset_snapshot_id=dataset_snapshot_id,
        parent_id=parent.id if parent is not None else None,
        metrics=dict(metrics or {}),
        hparams=dict(hparams or {}),
    )
    session.add(record)
    session.flush()
    return record


def record_gate(
    session: Session, *, adapter_id: str, passed: bool, reasons: list[str], metrics: dict[str, Any]
) -> AdapterRecord:
    """Store the gate's verdict on a candidate; a failed gate rejects it.

    Returns:
        The updated record (still ``candidate`` when it passed: promotion is separate).
    """
    record = _get(session, adapter_id)
    record.metrics = {**record.metrics, "gate": {"passed": passed, "reasons": reasons, **metrics}}
    if not passed:
        record.status = "rejected"
        record.status_reason = "; ".join(reasons)[:1000]
    session.add(record)
    return record


def promote(
    session: Session,
    *,
    adapter_id: str,
    adapters_dir: Path,
    publisher: Publisher | None,
    reason: str = "promoted",
) -> AdapterRecord:
    """Make an adapter its owner's serving adapter.

    Publishes it first (so a failing load changes nothing), retires the owner's previous
    promoted adapter as ``superseded`` (released from the publisher once the caller
    commits) and points the user or group at the new one.

    Args:
        session: An open session.
        adapter_id: A ``candidate`` or ``retired`` adapter's id (re-promoting a retired
            one is a rollback).
        adapters_dir: Where adapter directories live (``<adapters_dir>/<name>``).
        publisher: The serving backend, which loads the adapter now; ``None`` only where
            no backend serves (tests of the registry's bookkeeping).
        reason: Stored as the status reason.

    Returns:
        The promoted record.

    Raises:
        RegistryError: The adapter is rejected, already promoted, its files are missing or
            the backend finds no adapter in them.
    """
    record = _get(session, adapter_id)
    if record.status not in ("candidate", "retired"):
        raise RegistryError(f"adapter {record.name} is {record.status}; cannot promote it")
    path = adapters_dir / record.name
    if not (path / "adapter_config.json").is_file():
        raise RegistryError(f"adapter {record.name} has no files in {path}")
    if publisher is not None:
        try:
            publisher.publish(record.name, path)
        except AdapterNotFoundError as exc:
            raise RegistryError(f"adapter {record.name} could not be published: {exc}") from exc
    now = utcnow()
    current = promoted(session, owner_kind=record.owner_kind, owner_id=record.owner_id)  # type: ignore[arg-type]
    if current is not None:
        current.status = "retired"
        current.status_reason = SUPERSEDED
        current.retired_at = now
        session.add(current)
        _unpublish_on_commit(session, publisher, current.name)
    record.status = "promoted"
    record.status_reason = reason
    record.promoted_at = now
    record.retired_at = None
    session.add(record)
    _point_owner(session, record.owner_kind, record.owner_id, record.name)
    session.flush()
    return record


def rollback(
    session: Session,
    *,
    owner_kind: OwnerKind,
    owner_id: str,
    adapters_dir: Path,
    publisher: Publisher | None,
) -> AdapterRecord | None:
    """Retire the promoted adapter and bring back the one it superseded.

    The retired adapter is released from the publisher once the caller commits.

    Args:
        session: An open session.
        owner_kind: ``user`` or ``group``.
        owner_id: The owner's id.
        adapters_dir: Where adapter directories live.
        publisher: As for :func:`promote`.

    Returns:
        The adapter now promoted, or ``None`` when there was none to return to (the
        owner then falls back to the next route target: group adapter or base).

    Raises:
        RegistryError: The owner has no promoted adapter.
    """
    current = promoted(session, owner_kind=owner_kind, owner_id=owner_id)
    if current is None:
        raise RegistryError(f"{owner_kind} {owner_id} has no promoted adapter to roll back")
    previous = session.exec(
        select(AdapterRecord)
        .where(
            AdapterRecord.owner_kind == owner_kind,
            AdapterRecord.owner_id == owner_id,
            AdapterRecord.status == "retired",
            AdapterRecord.status_reason == SUPERSEDED,
            AdapterRecord.id != current.id,
        )
        .order_by(col(AdapterRecord.promoted_at).desc())
    ).first()
    _retire(current, ROLLED_BACK)
    session.add(current)
    _unpublish_on_commit(session, publisher, current.name)
    if previous is None:
        _point_owner(session, owner_kind, owner_id, None)
        session.flush()
        return None
    return promote(
        session,
        adapter_id=previous.id,
        adapters_dir=adapters_dir,
        publisher=publisher,
        reason=f"rollback from {current.name}",
    )


def retire(session: Session, *, adapter_id: str, reason: str) -> AdapterRecord:
    """Retire an adapter for good (e.g. its training data was deleted).

    A promoted adapter's owner falls back at once to the next route target. It is not
    a rollback target afterwards, since its reason is not ``superseded``.

    Returns:
        The retired record.
    """
    record = _get(session, adapter_id)
    was_promoted = record.status == "promoted"
    _retire(record, reason)
    session.add(record)
    if was_promoted:
        _point_owner(session, record.owner_kind, record.owner_id, None, missing_ok=True)
    session.flush()
    return record


def adapters_trained_on(
    session: Session, *, snapshot_ids: Sequence[str]
) -> Sequence[AdapterRecord]:
    """Adapters trained on any of these dataset snapshots and not yet retired."""
    if not snapshot_ids:
        return []
    return session.exec(
        select(AdapterRecord).where(
            col(AdapterRecord.dataset_snapshot_id).in_(list(snapshot_ids)),
            AdapterRecord.status != "retired",
        )
    ).all()


def _unpublish_on_commit(session: Session, publisher: Publisher | None, name: str) -> None:
    """Release ``name`` from the publisher once the session commits.

    Never before: until the commit the owner is still routed to it.
    """
    if publisher is None:
        return

    def release(_session: Any) -> None:
        try:
            publisher.unpublish(name)
        except Exception:  # the promotion is committed; a load left in memory is harmless
            log.exception("could not unpublish adapter %s", name)

    event.listen(session, "after_commit", release, once=True)


def _retire(record: AdapterRecord, reason: str) -> None:
    record.status = "retired"
    record.status_reason = reason[:1000]
    record.retired_at = utcnow()


def _get(session: Session, adapter_id: str) -> AdapterRecord:
    record = session.get(AdapterRecord, adapter_id)
    if record is None:
        raise RegistryError(f"no adapter with id {adapter_id!r}")
    return record


def _point_owner(
    session: Session, owner_kind: str, owner_id: str, name: str | None, *, missing_ok: bool = False
) -> None:
    owner: User | UserGroup | None = (
        session.get(User, owner_id) if owner_kind == "user" else session.get(UserGroup, owner_id)
    )
    if owner is None:
        if missing_ok:  # the owner is being deleted: nothing to point
            return
        raise RegistryError(f"no {owner_kind} with id {owner_id!r}")
    owner.adapter_name = name
    session.add(owner)
