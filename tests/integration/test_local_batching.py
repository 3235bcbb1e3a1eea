"""Batched generation in the local engine, on the real model: batched equals solo.

Requests that run together share forward passes (``adapters.batching``); each must still
get exactly the reply it gets alone (greedy, or sampled with a seed), whatever its
neighbours' prompts, lengths, adapters, stop strings, or cancellation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from adapters.engine import LocalEngine
from adapters.model_store import ensure_base_model
from adapters.streaming import GenerationResult
from evals.bench.loras import random_lora

pytestmark = pytest.mark.model

CACHE_DIR = Path(__file__).resolve().parents[2] / ".attune" / "models"
ADAPTER = "tester"


@dataclass(frozen=True)
class Request:
    """One request of the mix: what :meth:`LocalEngine.generate` gets."""

    content: str
    adapter: str | None = None
    max_new_tokens: int = 12
    temperature: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = True

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.content}]

    def run(self, engine: LocalEngine) -> GenerationResult:
        return engine.generate(
            self.messages(),
            adapter=self.adapter,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
            stop=self.stop,
            ignore_eos=self.ignore_eos,
        )


# Different prompt lengths (so rows are padded), budgets, adapters and endings.
MIX = [
    Request("Name three colours of the rainbow."),
    Request("Hi.", adapter=ADAPTER, max_new_tokens=20),
    Request(
        "Write a short poem about the sea, the wind and a lighthouse keeper at night.",
        max_new_tokens=6,
    ),
    Request("What is two plus two?", adapter=ADAPTER, max_new_tokens=16),
    Request("Say hello.", max_new_tokens=24, ignore_eos=False),  # may end by EOS
    Request("Tell me a fact about cats.", max_new_tokens=1),
    Request("Tell me a fact about dogs.", max_new_tokens=0),
]


@pytest.fixture(scope="module")
def model_dir() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield ensure_base_model(CACHE_DIR)


@pytest.fixture(scope="module")
def engine(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    adapters = tmp_path_factory.mktemp("adapters")
    random_lora(model_dir, adapters / ADAPTER, seed=0)
    threads = torch.get_num_threads()
    yield LocalEngine.load(model_dir, adapters_dir=adapters, max_batch=8, torch_threads=1)
    torch.set_num_threads(threads)


def run_together(engine: LocalEngine, requests: list[Request]) -> list[GenerationResult]:
    """Start every request at once, each in its own thread; their results in order."""
    results: list[GenerationResult | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def work(i: int) -> None:
        start.wait()
        results[i] = requests[i].run(engine)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


def test_batched_greedy_equals_solo_with_mixed_adapters_and_stops(engine: LocalEngine):
    solo = [request.run(engine) for request in MIX]
    # A stop string from the middle of one reply: batched, it must cut the same way.
    text = solo[0].text
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    mix = [*MIX, Request(MIX[0].content, stop=[stop])]
    solo.append(mix[-1].run(engine))
    assert solo[-1].finish_reason == "stop" and solo[-1].text == text[: text.index(stop)]
    assert engine.scheduler is not None
    before = engine.scheduler.largest_batch

    together = run_together(engine, mix)

    assert together == solo
    on_base = Request(MIX[1].content, max_new_tokens=MIX[1].max_new_tokens).run(engine)
    assert solo[1].text != on_base.text  # the adapter did apply
    assert engine.scheduler.largest_batch > max(before, 1)  # they did share steps
    assert engine.active_generations == 0


def test_seeded_sampling_is_reproducible_in_a_batch(engine: LocalEngine):
    sampled = [
        Request("Name an animal.", temperature=1.0, seed=7, max_new_tokens=10),
        Request("Name a city.", adapter=ADAPTER, temperature=0.8, seed=3, max_new_tokens=8),
        Request("Name an animal.", temperature=1.0, seed=8, max_new_tokens=10),
    ]
    mix = [*sampled, MIX[0]]
    solo = [request.run(engine) for request in mix]
    assert run_together(engine, mix) == solo
    assert run_together(engine, mix) == solo


async def test_a_cancelled_request_leaves_the_others_undisturbed(engine: LocalEngine):
    kept = [MIX[0], MIX[1], MIX[3]]
    solo = [request.run(engine) for request in kept]
    long = Request("Count from one to fifty.", max_new_tokens=200)

    async def run(request: Request) -> str:
        stream = engine.astream(
            request.messages(),
            adapter=request.adapter,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            ignore_eos=request.ignore_eos,
        )
        return "".join([chunk.text async for chunk in stream])

    async def cancelled() -> None:
        stream = engine.astream(long.messages(), max_new_tokens=200, ignore_eos=True)
        assert (await anext(stream)).text
        await stream.aclose()

    texts = await asyncio.gather(cancelled(), *(run(request) for request in kept))
    assert texts[1:] == [result.text for result in solo]

    def wait_idle() -> int:
        deadline = time.perf_counter() + 5.0
        while engine.active_generations and time.perf_counter() < deadline:
            time.sleep(0.01)
        return engine.active_generations

    assert await asyncio.to_thread(wait_idle) == 0


def test_a_cancel_event_ends_a_stream_without_a_final_chunk(engine: LocalEngine):
    cancel = threading.Event()
    stream = engine.stream(
        MIX[0].messages(), max_new_tokens=50, temperature=0, ignore_eos=True, cancel=cancel
    )
    first = next(stream)
    assert first.usage is None
    cancel.set()
    assert all(chunk.usage is None for chunk in stream)
    assert engine.active_generations == 0
