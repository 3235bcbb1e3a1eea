"""Periodic work, run by ``attune beat`` (scale-out) or inside the embedded worker.

Each entry submits a job keyed by its time window, so two beats (or a beat restarted
mid-window) still make one job per window.
"""

from __future__ import annotations

from typing import Any

from adapters.config import TrainingSettings
from workers.config import WorkerSettings


def schedule(
    settings: WorkerSettings, training: TrainingSettings | None = None
) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for ``settings`` (and the training triggers')."""
    training = training or TrainingSettings()
    return {
        "session-summaries": _periodic("summaries", settings.summaries_every_s),
        "prompt-optimizer": _periodic("optimize_prompts", settings.optimizer_every_s),
        "sweep-lost-jobs": {
            "task": "attune.sweep",
            "schedule": settings.sweep_every_s,
        },
        # Thresholds of new pairs or samples since an owner's last adapter → training jobs
        # (one per owner at a time, on the heavy queue).
        "training-triggers": _periodic("training_triggers", training.triggers_every_s),
        # Re-cluster users into groups, then the triggers train group adapters.
        "user-groups": _periodic("assign_groups", training.groups_every_s),
    }


def _periodic(kind: str, every_s: float) -> dict[str, Any]:
    """An entry that submits the ``kind`` job once per ``every_s`` window."""
    return {"task": "attune.periodic", "schedule": every_s, "args": (kind, every_s)}
