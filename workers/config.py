"""Settings of the workers: broker, queues, delivery guarantees. Mounted as ``worker``.

Set from the environment as ``ATTUNE_WORKER__BROKER_URL``, ``ATTUNE_WORKER__EMBEDDED``,
``ATTUNE_WORKER__LIGHT__CONCURRENCY`` and so on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Pool = Literal["threads", "solo", "prefork"]


class QueueSettings(BaseModel):
    """One queue and how the workers that consume it run."""

    name: str
    concurrency: int = Field(default=1, ge=1, le=64)
    pool: Pool = "threads"
    """``threads`` shares the process (and the embedded Chroma) with its tasks; ``prefork``
    enforces ``time_limit`` by killing the child, which thread pools cannot do."""
    soft_time_limit_s: float | None = Field(default=None, gt=0)
    """A task still running after this gets ``SoftTimeLimitExceeded`` (prefork only)."""
    time_limit_s: float | None = Field(default=None, gt=0)
    """A task still running after this is killed and its job fails (prefork only)."""
    max_retries: int = Field(default=5, ge=0)
    """Retries of a task that raised, with exponential backoff, before its job fails."""


def _light() -> QueueSettings:
    return QueueSettings(
        name="light", concurrency=2, pool="threads", soft_time_limit_s=120, time_limit_s=300
    )


def _heavy() -> QueueSettings:
    return QueueSettings(
        name="heavy",
        concurrency=1,
        pool="prefork",
        soft_time_limit_s=4 * 3600,
        time_limit_s=4 * 3600 + 300,
        max_retries=1,
    )


class WorkerSettings(BaseModel):
    """Celery: where tasks queue, who runs them, and what happens when a worker dies.

    The defaults need no server: the broker is a SQLite file in the data directory and
    ``attune serve`` runs the worker in its own process. Scale-out sets ``broker_url`` to
    Redis (``redis://host:6379/0``), ``embedded`` to false, and runs ``attune worker``
    processes anywhere.
    """

    broker_url: str | None = None
    """``None``: ``attune-sqla+sqlite:///<data_dir>/broker.db`` (durable, no server)."""
    result_backend: str | None = None
    """Celery's result store. ``None``: none — job state and results live in the ``jobs``
    table, which the API reads; set one (``redis://…/1``) only to use Celery's own results."""
    embedded: bool = True
    """``attune serve`` also consumes every queue, in threads of its own process."""
    light: QueueSettings = Field(default_factory=_light)
    """Distillation, session summaries, preference pairs, deletion cascades, prompt
    optimizer."""
    heavy: QueueSettings = Field(default_factory=_heavy)
    """Training."""
    queue_prefix: str = ""
    """Prepended to queue names (``<prefix>light``), so deployments or test runs that share
    a broker do not take each other's tasks."""
    visibility_timeout_s: float = Field(default=3600, gt=0)
    """A task taken but not acknowledged for this long is delivered again (Redis and the
    embedded broker). Long tasks are protected by their job's heartbeat, not by this."""
    heartbeat_s: float = Field(default=10, gt=0)
    """How often a running job proves its worker is alive."""
    stale_after_s: float = Field(default=60, gt=0)
    """A running job whose heartbeat is older than this belongs to a dead worker: its next
    delivery may take it over, and the sweeper sends it again."""
    sweep_every_s: float = Field(default=60, gt=0)
    """How often beat (or the embedded worker) re-sends lost and stale jobs."""
    poll_interval_s: float = Field(default=0.25, gt=0)
    """How often the embedded broker looks for new tasks when idle."""
    retry_backoff_s: float = Field(default=2, gt=0)
    retry_backoff_max_s: float = Field(default=300, gt=0)
    summaries_every_s: float = Field(default=900, gt=0)
    """Beat: summarize sessions that have ended."""
    session_idle_s: float = Field(default=1800, gt=0)
    """A session whose last turn is older than this has ended and gets its summary."""
    optimizer_every_s: float = Field(default=86400, gt=0)
    """Beat: the prompt optimizer (runs when the Persona issue provides it)."""
    redis_key_prefix: str = ""
    """Redis brokers: prefix for every key kombu writes (isolates deployments on one db)."""
    include: list[str] = Field(default_factory=list)
    """Extra task modules a worker imports (tests add a slow task this way)."""

    def queue_name(self, queue: Literal["light", "heavy"]) -> str:
        """The broker-side name of ``queue``."""
        settings: QueueSettings = getattr(self, queue)
        return self.queue_prefix + settings.name
