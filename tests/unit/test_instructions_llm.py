"""The model-backed instruction detector: the rules win, the model fills gaps, failures
fall back to the rules. The model is scripted (this is the merge and validation logic);
an OpenAI-compatible endpoint is configured by a deployment."""

from __future__ import annotations

import json

from graph.prompts import PromptLibrary
from memory.persona.instructions_llm import LLMInstructionDetector, make_detector, might_instruct
from tests.fakes import ReplyModel

PROMPT = PromptLibrary().source("instruction_detect", "v1")


def _detector(updates: list[dict[str, object]], error: str | None = None):
    model = ReplyModel(reply=json.dumps({"updates": updates}), error=error)
    return LLMInstructionDetector(model, prompt_template=PROMPT), model


async def test_the_model_fills_what_the_rules_miss_and_the_rules_win_their_fields() -> None:
    detector, model = _detector(
        [
            {"field": "language", "op": "set", "value": "dutch"},
            {"field": "preferred_name", "op": "set", "value": "Someone Else"},
            {"field": "verbosity", "op": "set", "value": "enormous"},  # not a verbosity
            {"field": "formatting.emoji", "op": "set", "value": "yes"},  # not a boolean
            {"field": "instructions", "op": "set", "value": "x"},  # not an op for rules
        ]
    )
    got = await detector("Call me Bea. can we maybe do dutch from here")
    assert [(u.field, u.op, u.value) for u in got] == [
        ("preferred_name", "set", "Bea"),  # the rules' answer stands
        ("language", "set", "Dutch"),  # normalized to the known spelling
    ]
    system, human = model.calls[0]
    assert "standing instructions" in system.text and human.text.startswith("Call me Bea")


async def test_messages_without_a_hint_skip_the_model_and_failures_fall_back() -> None:
    detector, model = _detector([{"field": "tone", "op": "set", "value": "grumpy"}])
    assert not might_instruct("What is the capital of Peru?")
    assert await detector("What is the capital of Peru?") == []
    assert model.calls == []
    broken, _ = _detector([], error="endpoint down")
    got = await broken("Always answer in French.")
    assert [(u.field, u.value) for u in got] == [("language", "French")]


def test_the_rules_alone_unless_configured() -> None:
    assert (
        make_detector("rules", base_url=None, model=None, api_key=None, prompt_template=None)
        is None
    )
    detector = make_detector(
        "llm", base_url="http://127.0.0.1:9/v1", model="m", api_key=None, prompt_template=PROMPT
    )
    assert isinstance(detector, LLMInstructionDetector)
