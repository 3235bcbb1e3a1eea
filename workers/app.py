"""The Celery app, built from settings by a factory; nothing is built at import.

Delivery guarantees, chosen deliberately (README, "Workers"):

* ``task_acks_late``: a message is acknowledged when its task has finished, not when it
  starts, so a worker that dies mid-task leaves the message to be delivered again.
* ``task_reject_on_worker_lost``: a prefork child that dies (OOM kill, segfault) puts its
  message back instead of acknowledging it as failed. A task that kills its worker every
  time is stopped by its job's attempt limit, not redelivered forever.
* ``worker_prefetch_multiplier=1``: a worker holds one message per free slot, so a crash
  delays little work and a long task does not sit on short ones.
* Visibility timeout (Redis and the embedded broker): a message taken and not acknowledged
  within ``worker.visibility_timeout_s`` is delivered again. Every task is idempotent by
  its job's key and claims its job under a heartbeat, so a second delivery of work that is
  done, or still running in a live worker, does nothing.
* Retries: a task that raises is retried with exponential backoff
  (``retry_backoff_s * 2**n``, at most ``retry_backoff_max_s``) up to its queue's
  ``max_retries``; then its job is ``failed`` with the error, and stays visible.

``celery -A workers.app worker`` works too: the module-level ``app`` is built from the
environment's settings on first access (PEP 562), not at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu import Queue

from workers import broker
from workers.inflight import InFlight
from workers.queue import KIND_QUEUE, task_name

if TYPE_CHECKING:
    from wiring.settings import Settings
    from workers.context import WorkerContext


class AttuneCelery(Celery):
    """A Celery app that carries the settings it was built from and its tasks' context."""

    def __init__(
        self, settings: Settings, context: WorkerContext | None, in_flight: InFlight
    ) -> None:
        """Name it ``attune``; not the current app (several may live in one process)."""
        super().__init__("attune", set_as_current=False)
        self.attune_settings = settings
        self.attune_context = context
        self.in_flight = in_flight
        """The jobs its tasks run (``workers.inflight``); shared by an embedded worker's apps."""


def broker_url(settings: Settings) -> str:
    """The configured broker, or the durable SQLite file in the data directory."""
    url = settings.worker.broker_url
    if url is None:
        url = f"{broker.TRANSPORT_ALIAS}+sqlite:///{settings.data_dir.resolve() / 'broker.db'}"
    return url


def _transport_options(settings: Settings, url: str) -> dict[str, Any]:
    w = settings.worker
    opts: dict[str, Any] = {"visibility_timeout": w.visibility_timeout_s}
    if url.startswith(broker.TRANSPORT_ALIAS):
        opts["polling_interval"] = w.poll_interval_s
        opts["restore_interval"] = min(5.0, w.visibility_timeout_s)
    if url.startswith(("redis://", "rediss://")):
        # kombu scans for expired unacked messages every interval x throttle seconds
        # (100 s by default); keep that well under the visibility timeout.
        opts["unacked_restore_interval"] = max(1, min(10, int(w.visibility_timeout_s / 3)))
        opts["unacked_restore_throttle"] = 1
        if w.redis_key_prefix:
            opts["global_keyprefix"] = w.redis_key_prefix
    return opts


def make_celery(
    settings: Settings,
    *,
    context: WorkerContext | None = None,
    in_flight: InFlight | None = None,
) -> AttuneCelery:
    """A Celery app for ``settings``; ``context`` shares an open one (embedded worker).

    ``in_flight`` shares one record of running jobs between the apps of one worker.
    """
    from workers import beat

    broker.register()
    w = settings.worker
    url = broker_url(settings)
    app = AttuneCelery(settings, context, in_flight or InFlight())
    annotations: dict[str, dict[str, Any]] = {}
    routes: dict[str, dict[str, str]] = {}
    for kind, queue in KIND_QUEUE.items():
        q = getattr(w, queue)
        routes[task_name(kind)] = {"queue": w.queue_name(queue)}
        annotations[task_name(kind)] = {
            "time_limit": q.time_limit_s,
            "soft_time_limit": q.soft_time_limit_s,
            "max_retries": q.max_retries,
        }
    app.conf.update(
        broker_url=url,
        broker_transport_options=_transport_options(settings, url),
        broker_connection_retry_on_startup=True,
        result_backend=w.result_backend,
        task_ignore_result=w.result_backend is None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=w.queue_name("light"),
        task_queues=[Queue(w.queue_name("light")), Queue(w.queue_name("heavy"))],
        task_routes=routes,
        task_annotations=annotations,
        task_create_missing_queues=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=url.startswith(("redis", "amqp")),
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat.schedule(w, settings.training),
        beat_schedule_filename=str(settings.data_dir / "beat-schedule"),
        include=["workers.tasks", *w.include],
    )
    return app


def attune_app(app: Celery) -> AttuneCelery:
    """``app`` as the factory built it (tasks see their app as a plain ``Celery``)."""
    if not isinstance(app, AttuneCelery):
        raise TypeError(f"this task runs only on an app built by make_celery, not {app!r}")
    return app


def context_of(app: Celery) -> WorkerContext:
    """The app's worker context, opened from its settings on first use in a worker."""
    from workers.context import open_context

    ours = attune_app(app)
    if ours.attune_context is None:
        ours.attune_context = open_context(ours.attune_settings)
    return ours.attune_context


_app: AttuneCelery | None = None


def __getattr__(name: str) -> Any:
    """``workers.app.app``: the app for ``celery -A workers.app``, built on first access."""
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        from wiring.settings import load_settings

        _app = make_celery(load_settings())
    return _app
