"""Training jobs without the API: kind resolution, pair sources, groups, triggers, resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from adapters.config import TrainingSettings
from adapters.dataset_sources import add_samples, preference_pairs, snapshot_owner
from adapters.groups import assign_groups, cluster, match_clusters, profile_vector
from adapters.jobs import DataCounts, NotEnoughData, TrainingPaths, resolve_kind, run_training
from adapters.records import AdapterRecord
from memory.pairs import PreferencePair as StoredPair
from memory.records import db, repo
from memory.records.tables import Feedback, Profile, Thread, Turn, User, UserGroup
from tests.tiny_lm import build_tiny_lm
from wiring.settings import Settings
from workers.beat import schedule
from workers.config import WorkerSettings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return db.open_engine(settings.db)


def _user(engine: Engine, name: str = "u") -> str:
    with Session(engine) as session:
        user, _ = repo.create_user(session, name=name)
        session.commit()
        return user.id


@dataclass(frozen=True)
class _Owner:
    """A user with ten writing samples, and training settings for the tiny model."""

    uid: str
    training: TrainingSettings
    paths: TrainingPaths

    def train(
        self,
        engine: Engine,
        run_id: str,
        overrides: dict[str, Any],
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """Run an SFT training job for this user, as the worker would."""
        return run_training(
            engine,
            self.training,
            self.paths,
            owner_kind="user",
            owner_id=self.uid,
            kind="sft",
            run_id=run_id,
            overrides=overrides,
            publisher=None,  # this bookkeeping has no server to publish on
            progress=progress,
        )


@pytest.fixture
def owner(engine: Engine, tmp_path: Path) -> _Owner:
    tiny = build_tiny_lm(tmp_path / "tiny")
    uid = _user(engine)
    with Session(engine) as session:
        add_samples(session, user_id=uid, texts=[f"Arr, sample {i}!" for i in range(10)])
        session.commit()
    training = TrainingSettings(
        datasets_url=str(tmp_path / "datasets"),
        device="cpu",
        sft_margin=0.0,
        general_max_rise=100.0,
    )
    return _Owner(uid, training, TrainingPaths(tiny, tmp_path / "adapters", tmp_path / "runs"))


def test_resolve_kind_prefers_dpo_and_explains_what_is_missing():
    s = TrainingSettings(min_sft_examples=4, min_dpo_pairs=3)
    assert resolve_kind(DataCounts(sft=10, pairs=3), "auto", s) == "dpo"
    assert resolve_kind(DataCounts(sft=10, pairs=2), "auto", s) == "sft"
    assert resolve_kind(DataCounts(sft=4, pairs=9), "sft", s) == "sft"
    with pytest.raises(NotEnoughData, match="at least 3 preference pairs; there are 2"):
        resolve_kind(DataCounts(sft=10, pairs=2), "dpo", s)
    with pytest.raises(NotEnoughData, match=r"at least 4 examples .* there are 1, and DPO"):
        resolve_kind(DataCounts(sft=1, pairs=0), "auto", s)


def test_profile_vectors_cluster_similar_users_together():
    terse = {"verbosity": "brief", "style": {"avg_words": 3, "ends_with_period": 0.0}}
    chatty = {"verbosity": "detailed", "style": {"avg_words": 60, "exclamation_rate": 2}}
    emoji = {"formatting": {"emoji": True}, "style": {"emoji_rate": 3.0, "avg_words": 10}}
    vectors = [profile_vector(p) for p in (terse, chatty, emoji, terse, chatty, emoji)]
    assert len({len(v) for v in vectors}) == 1
    labels = cluster(vectors, 3)
    assert labels[0] == labels[3] and labels[1] == labels[4] and labels[2] == labels[5]
    assert len(set(labels)) == 3
    assert cluster(vectors[:1], 3) == [0]
    assert cluster([], 3) == []


def test_match_clusters_keeps_groups_stable():
    got = match_clusters({0: {"a", "b"}, 1: {"c"}, 2: {"d"}}, {"g1": {"c", "x"}, "g2": {"a"}})
    assert got == {0: "g2", 1: "g1", 2: None}


def test_assign_groups_creates_auto_groups_and_leaves_manual_ones(engine: Engine):
    ids = [_user(engine, f"u{i}") for i in range(6)]
    styles = [{"avg_words": 2}, {"avg_words": 80, "exclamation_rate": 3}] * 3
    with Session(engine) as session:
        manual = UserGroup(name="vip")
        session.add(manual)
        session.flush()
        for uid, style in zip(ids, styles, strict=True):
            session.add(Profile(user_id=uid, data={"style": style}))
        pinned = session.get(User, ids[0])
        assert pinned is not None
        pinned.group_id = manual.id
        session.add(pinned)
        session.commit()
        manual_id = manual.id
    with Session(engine) as session:
        first = assign_groups(session, group_count=2)
        session.commit()
    assert first.users == 5 and len(first.groups) == 2 and len(first.created) == 2
    with Session(engine) as session:
        groups = {u.id: u.group_id for u in session.exec(select(User)).all()}
    assert groups[ids[0]] == manual_id
    assert groups[ids[2]] == groups[ids[4]] != groups[ids[1]] == groups[ids[3]] == groups[ids[5]]
    with Session(engine) as session:
        again = assign_groups(session, group_count=2)
        session.commit()
    assert again.moved == 0 and again.created == []  # same clusters, same groups


def test_preference_pairs_come_from_the_pairs_table_plus_uncovered_edits(
    engine: Engine, tmp_path: Path
):
    root = str(tmp_path / "datasets")
    uid = _user(engine)
    with Session(engine) as session:
        thread = Thread(user_id=uid)
        session.add(thread)
        session.flush()
        q1 = Turn(user_id=uid, thread_id=thread.id, role="user", content="Where to?")
        a1 = Turn(user_id=uid, thread_id=thread.id, role="assistant", content="Go north.")
        q2 = Turn(user_id=uid, thread_id=thread.id, role="user", content="Old question?")
        a2 = Turn(user_id=uid, thread_id=thread.id, role="assistant", content="Old answer.")
        session.add_all([q1, a1, q2, a2])
        session.flush()
        a1.reply_to_id, a2.reply_to_id = q1.id, q2.id
        sent = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Where to?"}]
        session.add(
            StoredPair(
                id="pair_1",
                user_id=uid,
                prompt_turn_id=q1.id,
                prompt=sent,
                chosen="North, arr!",
                rejected="Go north.",
                rule="edit",
                sources={"turn_ids": [q1.id, a1.id]},
            )
        )
        session.add(Feedback(user_id=uid, turn_id=a1.id, rating="down", edited_text="North, arr!"))
        session.add(Feedback(user_id=uid, turn_id=a2.id, rating="down", edited_text="Arr, old."))
        session.commit()
        pairs = preference_pairs(session, user_ids=[uid])
        assert [(p.prompt, p.chosen, p.rejected, p.source_id) for p in pairs] == [
            (tuple(sent), "North, arr!", "Go north.", q1.id),
            (({"role": "user", "content": "Old question?"},), "Arr, old.", "Old answer.", a2.id),
        ]
        snap = snapshot_owner(session, owner_kind="user", owner_id=uid, root=root)
        assert {q1.id, a1.id, a2.id} <= set(snap.source_turn_ids)


def test_beat_schedules_the_training_triggers():
    entries = schedule(WorkerSettings(), TrainingSettings(triggers_every_s=60, groups_every_s=600))
    assert entries["training-triggers"]["args"] == ("training_triggers", 60)
    assert entries["user-groups"]["args"] == ("assign_groups", 600)


def test_a_killed_job_resumes_from_its_checkpoint(engine: Engine, owner: _Owner):
    uid, paths = owner.uid, owner.paths
    seen: list[float] = []

    def dies_at_step_3(value: float) -> None:
        seen.append(value)
        if len(seen) == 4:  # the snapshot, then steps 1..3: a worker dies mid-training
            raise KeyboardInterrupt

    overrides = {"max_steps": 4, "save_steps": 2, "batch_size": 2}
    with pytest.raises(KeyboardInterrupt):
        owner.train(engine, "job_1", overrides, progress=dies_at_step_3)
    assert (paths.work_dir / "job_1" / "state.json").is_file()
    result = owner.train(engine, "job_1", overrides)
    assert result["training"]["resumed_from_step"] == 2
    assert result["training"]["steps"] == 4
    assert result["version"] == 1 and result["status"] == "promoted"
    assert not (paths.work_dir / "job_1").exists()
    with Session(engine) as session:
        assert len(session.exec(select(AdapterRecord)).all()) == 1
        assert session.get(User, uid).adapter_name == result["adapter"]  # type: ignore[union-attr]


def test_the_save_steps_setting_sets_the_checkpoint_interval(engine: Engine, owner: _Owner):
    configured = _Owner(owner.uid, owner.training.model_copy(update={"save_steps": 3}), owner.paths)
    result = configured.train(engine, "job_s", {"max_steps": 2, "batch_size": 2})
    with Session(engine) as session:
        record = session.exec(select(AdapterRecord)).one()
        assert record.hparams["save_steps"] == 3  # ATTUNE_TRAINING__SAVE_STEPS reaches the run
    assert result["status"] == "promoted"


def test_weights_trained_on_data_deleted_mid_run_are_discarded(engine: Engine, owner: _Owner):
    from sqlmodel import delete

    from adapters.records import Sample

    uid, paths = owner.uid, owner.paths
    calls: list[float] = []

    def user_deletes_a_sample_at_step_1(value: float) -> None:
        calls.append(value)
        if len(calls) == 2:  # the snapshot is taken; training has begun
            with Session(engine) as s:
                first = s.exec(select(Sample.id).where(Sample.user_id == uid)).first()
                s.exec(delete(Sample).where(Sample.id == first))  # type: ignore[arg-type]
                s.commit()

    result = owner.train(
        engine,
        "job_d",
        {"max_steps": 2, "save_steps": 1, "batch_size": 2},
        progress=user_deletes_a_sample_at_step_1,
    )
    assert result["status"] == "discarded" and result["adapter_id"] is None
    assert not paths.adapters_dir.exists() or not any(paths.adapters_dir.iterdir())
    with Session(engine) as session:
        assert session.exec(select(AdapterRecord)).all() == []
