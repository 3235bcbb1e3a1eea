"""The generation gate: a semaphore for decodes with an exclusive mode for adapter loads."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.generation_gate import Cancelled, GenerationGate


def test_admits_at_most_slots_at_once():
    gate = GenerationGate(2)
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal peak
        with gate.slot():
            with lock:
                peak = max(peak, gate.active)
            time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2
    assert gate.active == 0


def test_exclusive_waits_for_running_slots_and_blocks_new_ones():
    gate = GenerationGate(2)
    events: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def decode() -> None:
        with gate.slot():
            holding.set()
            release.wait()
            events.append("decode done")

    def load() -> None:
        with gate.exclusive():
            events.append("load")

    def late_decode() -> None:
        with gate.slot():
            events.append("late decode")

    first = threading.Thread(target=decode)
    first.start()
    holding.wait()
    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(0.05)
    late = threading.Thread(target=late_decode)
    late.start()
    time.sleep(0.05)
    assert events == []  # the loader waits; the late decode waits behind the loader
    release.set()
    for thread in (first, loader, late):
        thread.join(timeout=5)
    assert events == ["decode done", "load", "late decode"]


def test_cancel_while_waiting_raises_cancelled():
    gate = GenerationGate(1)
    cancel = threading.Event()
    with gate.slot():
        threading.Timer(0.05, cancel.set).start()
        started = time.perf_counter()
        with pytest.raises(Cancelled), gate.slot(cancel):
            pass
        assert time.perf_counter() - started < 1.0
    assert gate.active == 0


def test_rejects_zero_slots():
    with pytest.raises(ValueError):
        GenerationGate(0)
