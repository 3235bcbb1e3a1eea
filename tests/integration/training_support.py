"""What the training API tests share: a tiny real model and settings suited to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM saved as a model directory (seconds to train)."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "model")


def for_tiny_model(settings: Settings, tiny: Path) -> Settings:
    """``settings`` training ``tiny`` on the CPU, with small data minimums and open gates."""
    settings.model.base_model_dir = tiny
    settings.training.device = "cpu"
    settings.training.min_sft_examples = 4
    settings.training.min_dpo_pairs = 4
    # A random tiny model: the gate's margins are the real model's business (evals/).
    settings.training.sft_margin = 0.0
    settings.training.general_max_rise = 100.0
    return settings
