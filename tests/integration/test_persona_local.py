"""Persona with the real parts: the local SmolLM2 model, MiniLM and a migrated database.

The instruction optimizer runs end to end through the configured chat model (critique,
rewrite, answers for both blocks), its gate records both scores, and the prompt of the
next turn carries whatever block is active. With a 135M model the proposals are weak;
what is checked is the machinery, not their quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sqlmodel import Session

from adapters.backend import LocalBackend
from adapters.engine import LocalEngine
from adapters.model_store import ensure_base_model
from graph.optimizer import optimize_user
from memory.persona import procedural
from memory.records import repo
from memory.records.tables import Feedback, Turn, new_id
from tests.conftest import shared_embedder
from wiring.services import build_core
from wiring.settings import Settings

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".attune" / "models"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        threads = torch.get_num_threads()
        model_dir = ensure_base_model(CACHE_DIR)
        engine = LocalEngine.load(
            model_dir,
            adapters_dir=tmp_path_factory.mktemp("adapters"),
            max_concurrency=1,
            torch_threads=1,
        )
        yield LocalBackend(engine)
        torch.set_num_threads(threads)


def test_optimizer_runs_through_the_local_model_and_gates(
    backend: LocalBackend, settings: Settings
) -> None:
    core = build_core(settings, backend=backend, embedder=shared_embedder())
    engine = core.engine
    try:
        services = core.graph_services()
        with Session(engine) as s:
            user, _ = repo.create_user(s, name="terse")
            for question, answer, edit in [
                (
                    "What is Python?",
                    "Python is a programming language created by ...",
                    "A language.",
                ),
                ("What is rain?", "Rain is water falling from clouds in drops ...", "Water drops."),
                (
                    "Who was Ada Lovelace?",
                    "Ada Lovelace was a mathematician ...",
                    "A mathematician.",
                ),
            ]:
                thread = new_id("thr")
                q = Turn(user_id=user.id, thread_id=thread, role="user", content=question)
                a = Turn(
                    user_id=user.id,
                    thread_id=thread,
                    role="assistant",
                    content=answer,
                    reply_to_id=q.id,
                )
                repo.record_exchange(
                    s, thread_id=thread, user_id=user.id, user_turn=q, assistant_turn=a
                )
                s.add(
                    Feedback(
                        user_id=user.id,
                        turn_id=a.id,
                        rating="down",
                        edited_text=edit,
                        comment="too long",
                    )
                )
            s.commit()
            user_id = user.id

        result = optimize_user(services, user_id, max_tokens=24)

        assert result.status in ("activated", "rejected")
        assert result.block is not None and result.block.text
        assert result.block.critique
        assert result.block.score is not None and result.block.baseline_score is not None
        with Session(engine) as s:
            (stored,) = procedural.list_blocks(s, user_id=user_id)
            # The outcome depends on what the model wrote; the record must match it either way.
            assert stored.status == {"activated": "active", "rejected": "rejected"}[result.status]
            assert (
                sorted(stored.feedback_ids) == stored.feedback_ids and len(stored.feedback_ids) == 3
            )
        again = optimize_user(services, user_id, max_tokens=24)
        assert again.status == "skipped"  # nothing new to learn from
    finally:
        core.close()
