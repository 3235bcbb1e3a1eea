"""Batched decoding on a tiny random model: batched equals solo, rows come and go.

The real-model checks are in ``tests/integration/test_local_batching.py``; this one runs
in a second and exercises the scheduler's bookkeeping: more requests than ``max_batch``
(queued, admitted as rows leave), requests arriving while a batch runs (caches merged
with different lengths), rows ending at different steps, and an adapter beside the base
model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from adapters.batching import _left_pad
from adapters.engine import LocalEngine
from adapters.streaming import GenerationResult, ReplyBuilder
from tests.tiny_lm import build_tiny_lm

ADAPTER = "tiny-lora"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    root = tmp_path_factory.mktemp("tiny")
    model_dir = build_tiny_lm(root / "model")
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(root / "adapters" / ADAPTER))
    yield LocalEngine.load(
        model_dir, adapters_dir=root / "adapters", device="cpu", max_batch=3, torch_threads=1
    )


def ask(engine: LocalEngine, i: int) -> GenerationResult:
    """Request ``i`` of a mix: prompt length, budget and adapter vary with ``i``."""
    return engine.generate(
        [{"role": "user", "content": "ab" * (1 + 7 * i % 11)}],
        adapter=ADAPTER if i % 3 == 1 else None,
        max_new_tokens=3 + 5 * i % 13,
        temperature=0 if i % 4 else 0.9,
        seed=i,
        ignore_eos=True,
    )


def test_more_requests_than_rows_arriving_apart_equal_their_solo_runs(engine: LocalEngine):
    solo = [ask(engine, i) for i in range(10)]
    results: list[GenerationResult | None] = [None] * 10

    def work(i: int) -> None:
        time.sleep(0.002 * i)  # some join a running batch, some wait for a free row
        results[i] = ask(engine, i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == solo
    assert engine.scheduler is not None and engine.scheduler.largest_batch == 3
    assert engine.active_generations == 0


def test_zero_max_tokens_ends_at_once(engine: LocalEngine):
    reply = engine.generate([{"role": "user", "content": "a"}], max_new_tokens=0)
    assert reply.text == "" and reply.usage.completion_tokens == 0
    assert reply.finish_reason == "length"


def test_left_pad_pads_the_start_of_one_dimension():
    kv = torch.ones(2, 1, 3, 4)  # (rows, heads, positions, dim)
    padded = _left_pad(kv, 5, 2)
    assert padded.shape == (2, 1, 5, 4)
    assert padded[:, :, :2].eq(0).all() and padded[:, :, 2:].eq(1).all()
    assert _left_pad(torch.ones(2, 3), 4, 1).tolist() == [[0, 1, 1, 1], [0, 1, 1, 1]]


def chars(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


def build(max_new_tokens: int = 10, stop: list[str] | None = None) -> ReplyBuilder:
    return ReplyBuilder(
        chars,
        prompt_tokens=4,
        max_new_tokens=max_new_tokens,
        stop=stop,
        eos_ids={0},
        ignore_eos=False,
    )


def test_reply_ends_on_eos_without_text_for_it():
    reply = build()
    texts, running = [reply.push(t) for t in (104, 105)], not reply.done
    assert texts == ["h", "i"] and running
    assert reply.push(0) == "" and reply.done
    final = reply.final()
    assert final.finish_reason == "stop" and final.usage is not None
    assert final.usage.completion_tokens == 3 and final.usage.prompt_tokens == 4


def test_reply_ends_on_its_budget_with_length():
    reply = build(max_new_tokens=2)
    reply.push(104)
    reply.push(105)
    assert reply.done and reply.final().finish_reason == "length"


def test_reply_holds_back_a_possible_stop_and_releases_it_at_the_end():
    reply = build(max_new_tokens=3, stop=["xy"])
    assert [reply.push(t) for t in (97, 98, 120)] == ["a", "b", ""]
    assert reply.done and reply.final().text == "x"
