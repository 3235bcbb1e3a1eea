"""Token choice in the decode loop: greedy, nucleus and seeded sampling."""

from __future__ import annotations

import torch

from adapters.decoding import choose_token


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


LOGITS = torch.tensor([0.0, 3.0, 2.9, -1.0, 1.0])


def test_zero_temperature_is_argmax():
    assert choose_token(LOGITS, temperature=0, top_p=0.5, generator=gen(0)) == 1


def test_tiny_top_p_keeps_only_the_most_likely():
    picks = {choose_token(LOGITS, temperature=1.0, top_p=1e-6, generator=gen(s)) for s in range(20)}
    assert picks == {1}


def test_top_p_keeps_the_nucleus():
    # tokens 1 and 2 hold ~80 % of the mass at temperature 1
    picks = {choose_token(LOGITS, temperature=1.0, top_p=0.6, generator=gen(s)) for s in range(50)}
    assert picks == {1, 2}


def test_same_seed_same_choices_and_seeds_differ():
    flat = torch.zeros(1000)

    def draws(seed: int) -> list[int]:
        g = gen(seed)
        return [choose_token(flat, temperature=1.0, top_p=1.0, generator=g) for _ in range(5)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
