"""The tasks: each takes a job id, claims the job, and calls a plain function.

The work lives in the packages that own it (``memory``, ``graph``); ``workers.handlers``
maps a job's payload of ids to those calls. Tasks are registered on every app the factory
builds (``shared_task``), under ``attune.<kind>``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Task, shared_task

from memory.records.jobs import Job
from workers import handlers
from workers.app import attune_app, context_of
from workers.context import WorkerContext
from workers.queue import JobQueue
from workers.runner import run_job

Handler = Callable[[WorkerContext, Job], dict[str, Any]]


def _run(task: Task[Any, Any], job_id: str, work: Handler) -> dict[str, Any] | None:
    ctx = context_of(task.app)
    settings = attune_app(task.app).attune_settings.worker
    return run_job(task, ctx.engine, settings, job_id, partial(work, ctx))


def _queue(task: Task[Any, Any]) -> JobQueue:
    return JobQueue(
        task.app, context_of(task.app).engine, attune_app(task.app).attune_settings.worker
    )


@shared_task(bind=True, name="attune.distill")
def distill(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Semantic memories and style statistics from recorded or imported turns."""
    return _run(self, job_id, handlers.distill)


@shared_task(bind=True, name="attune.pairs")
def pairs(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Preference pairs of the prompt a rated turn answers."""
    return _run(self, job_id, handlers.build_pairs)


@shared_task(bind=True, name="attune.delete_turn")
def delete_turn(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """A turn and everything derived from it; then retrains of adapters it retired."""
    settings = attune_app(self.app).attune_settings
    return _run(self, job_id, handlers.then_retrain(settings, _queue(self), handlers.delete_turn))


@shared_task(bind=True, name="attune.delete_user")
def delete_user(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """A user and everything held about them; then retrains of group adapters it retired."""
    settings = attune_app(self.app).attune_settings
    return _run(self, job_id, handlers.then_retrain(settings, _queue(self), handlers.delete_user))


@shared_task(bind=True, name="attune.train_sft")
def train_sft(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """LoRA SFT for the job's owner: snapshot, train, gate, register, promote (heavy)."""
    return _run(self, job_id, handlers.train(attune_app(self.app).attune_settings))


@shared_task(bind=True, name="attune.train_dpo")
def train_dpo(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """DPO for the job's owner: snapshot, train, gate, register, promote (heavy)."""
    return _run(self, job_id, handlers.train(attune_app(self.app).attune_settings))


@shared_task(bind=True, name="attune.training_triggers")
def training_triggers(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Queue training for owners past the new-data thresholds."""
    settings = attune_app(self.app).attune_settings
    return _run(self, job_id, handlers.training_triggers(settings, _queue(self)))


@shared_task(bind=True, name="attune.assign_groups")
def assign_groups(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Re-cluster users into groups; queue group training past the thresholds."""
    settings = attune_app(self.app).attune_settings
    return _run(self, job_id, handlers.assign_groups(settings, _queue(self)))


@shared_task(bind=True, name="attune.summaries")
def summaries(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """Summaries of sessions that have ended."""
    return _run(self, job_id, handlers.summaries)


@shared_task(bind=True, name="attune.optimize_prompts")
def optimize_prompts(self: Task[Any, Any], job_id: str) -> dict[str, Any] | None:
    """The procedural-memory optimizer, for every user."""
    return _run(self, job_id, handlers.optimize_prompts)


@shared_task(bind=True, name="attune.periodic")
def periodic(self: Task[Any, Any], kind: str, window_s: float) -> str:
    """Beat's entry: submit the ``kind`` job of the current time window; return its id.

    One job per window, however many beats fire.
    """
    return (
        _queue(self)
        .submit(kind, key=handlers.window_key(kind, window_s), payload={}, user_id=None)
        .id
    )


@shared_task(bind=True, name="attune.sweep")
def sweep(self: Task[Any, Any]) -> int:
    """Send again the jobs whose task may have been lost; return how many."""
    return _queue(self).sweep()
