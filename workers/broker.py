"""The embedded broker: kombu's SQLAlchemy transport, made safe for ``acks_late``.

kombu's SQLAlchemy transport marks a message invisible when a worker takes it and never
looks at it again: the ack is a no-op and only a *graceful* shutdown puts unacknowledged
messages back (as new rows). A worker killed mid-task therefore loses the task, and acked
rows pile up forever. This subclass keeps the table and URL format and changes three things:

* an ack (or a reject without requeue) deletes the message's row;
* requeueing (reject with requeue, the restore at a graceful shutdown) makes the same row
  visible again instead of inserting a copy;
* rows taken longer than ``visibility_timeout`` seconds ago and never acked become visible
  again, checked at most every ``restore_interval`` seconds while polling (the Redis
  transport's visibility timeout, on SQL);
* ``drain_events`` returns after one polling interval, so Celery applies acks promptly.

It registers itself as the ``attune-sqla`` transport: ``attune-sqla+sqlite:///path.db``.
SQLite gets WAL and a busy timeout so the API (publishing) and a worker (consuming) can
share the file from different processes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from json import loads
from queue import Empty
from typing import Any

import kombu.transport
from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, delete, event, text, update
from sqlalchemy.engine import Engine

TRANSPORT_ALIAS = "attune-sqla"

# Celery and kombu put their own options in transport_options; only these reach the engine.
_ENGINE_OPTIONS = ("pool_size", "max_overflow", "pool_recycle", "echo")


def register() -> None:
    """Make ``attune-sqla+<sqlalchemy url>`` broker URLs resolve to this transport."""
    kombu.transport.TRANSPORT_ALIASES.setdefault(TRANSPORT_ALIAS, f"{__name__}:Transport")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Channel(kombu_sqla.Channel):
    """A channel whose acks delete rows and whose unacked rows come back after a timeout."""

    visibility_timeout: float = 3600.0
    restore_interval: float = 5.0

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        """Read the visibility options; see the module docstring."""
        opts: dict[str, Any] = connection.client.transport_options
        self.visibility_timeout = float(opts.get("visibility_timeout", self.visibility_timeout))
        self.restore_interval = float(opts.get("restore_interval", self.restore_interval))
        self._rows: dict[str, int] = {}  # delivery tag -> message row id
        self._rows_lock = threading.Lock()
        self._last_restore = 0.0
        super().__init__(connection, **kwargs)

    def _engine_from_config(self) -> Engine:
        conninfo: Any = self.connection.client
        opts: dict[str, Any] = conninfo.transport_options
        kwargs = {k: opts[k] for k in _ENGINE_OPTIONS if k in opts}
        url = str(conninfo.hostname)
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    @property
    def _engine(self) -> Engine:
        engine: Engine = self._open()[0]
        return engine

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        # kombu's own _get, keeping the row id of the message it takes.
        now = time.monotonic()
        if now - self._last_restore >= self.restore_interval:
            self._last_restore = now
            self._restore_expired(queue)
        obj = self._queue_row(queue)
        session: Any = self.session
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        msg_cls = self.message_cls
        try:
            msg = (
                session.query(msg_cls)
                .with_for_update()
                .filter(msg_cls.queue_id == obj.id)
                .filter(msg_cls.visible == True)  # noqa: E712 (SQL, not Python)
                .order_by(msg_cls.sent_at)
                .order_by(msg_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            msg.visible = False
            payload = loads(bytes_to_str(msg.payload))
            row_id = int(msg.id)
        finally:
            session.commit()
        tag = payload.get("properties", {}).get("delivery_tag")
        if tag is not None:
            with self._rows_lock:
                self._rows[tag] = row_id
        return payload

    def _queue_row(self, queue: str) -> Any:
        get_or_create: Any = getattr(self, "_get_or_create")  # noqa: B009 (untyped in stubs)
        return get_or_create(queue)

    def _restore_expired(self, queue: str) -> None:
        """Make rows taken more than ``visibility_timeout`` ago visible again."""
        obj = self._queue_row(queue)
        # kombu stores naive local times (``datetime.now``) in ``timestamp``.
        cutoff = datetime.now() - timedelta(seconds=self.visibility_timeout)
        msg = self.message_cls
        with self._engine.begin() as conn:
            conn.execute(
                update(msg.__table__)
                .where(msg.__table__.c.queue_id == obj.id)
                .where(msg.__table__.c.visible == False)  # noqa: E712
                .where(msg.__table__.c.timestamp < cutoff)
                .values(visible=True)
            )

    def _forget(self, delivery_tag: str) -> int | None:
        with self._rows_lock:
            return self._rows.pop(delivery_tag, None)

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        """Acknowledge: the message's row is deleted (acks may come from pool threads)."""
        super().basic_ack(delivery_tag, multiple)
        row_id = self._forget(delivery_tag)
        if row_id is not None:
            table = self.message_cls.__table__
            with self._engine.begin() as conn:
                conn.execute(delete(table).where(table.c.id == row_id))

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject: requeue makes the row visible again; otherwise the row is deleted."""
        if requeue:
            super().basic_reject(delivery_tag, requeue=True)  # -> _restore
            return
        self.basic_ack(delivery_tag)

    def _restore(self, message: Any) -> None:
        tag = message.delivery_tag
        row_id = self._forget(tag)
        if row_id is None:  # not a row we took (should not happen): fall back to a copy
            super()._restore(message)
            return
        table = self.message_cls.__table__
        with self._engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == row_id).values(visible=True))


class Transport(kombu_sqla.Transport):
    """kombu's SQLAlchemy transport with the channel above."""

    Channel = Channel

    # The stubs of kombu's base and virtual transports disagree on this signature.
    def drain_events(  # type: ignore[override]
        self, connection: Any, timeout: float | None = None
    ) -> None:
        """Wait for a message at most one polling interval at a time.

        Celery's loop for transports without an event loop applies acknowledgements from
        pool threads only between ``drain_events`` calls, which it makes with a 2 s
        timeout. A full prefetch window would then hold every slot for up to 2 s; returning
        after one polling interval keeps acks (and the next deliveries) prompt.
        """
        cap = max(float(self.polling_interval or 0.05), 0.01)
        super().drain_events(connection, timeout=min(timeout or cap, cap))
