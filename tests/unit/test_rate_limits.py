"""Per-key rate limits: token buckets for requests and tokens per minute, and their headers.

``check_buckets`` is the contract every limiter passes; the Redis limiter runs it in
``tests/integration/test_rate_limit_redis.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from api.admission import gate_of
from api.limits import MemoryLimiter, RateLimiter, make_limiter, request_tokens
from graph.runner import ChatMessage, TurnRequest
from graph.state import GenerationParams
from tests.conftest import Api
from wiring.settings import ServerSettings, Settings

CHAT = "/v1/chat/completions"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[[int, int, Clock], RateLimiter]


async def check_buckets(make: MakeLimiter, key: str) -> None:
    """The contract: buckets hold a minute's worth, refill continuously, refuse whole."""
    clock = Clock()
    limiter = make(2, 100, clock)
    first = await limiter.charge(key, 30)
    assert first.allowed and first.headers() == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "70",
        "x-ratelimit-reset-tokens": "18s",
    }
    assert (await limiter.charge(key, 30)).allowed
    dry = await limiter.charge(key, 30)  # no request left
    assert not dry.allowed and dry.headers()["x-ratelimit-remaining-requests"] == "0"
    refusal = dry.refusal()
    assert refusal.status == 429 and refusal.type == "requests"
    assert refusal.retry_after_s == 30  # one request refills in 60 s / 2
    assert refusal.headers["x-ratelimit-remaining-tokens"] == "40"  # a refusal takes nothing

    clock.now += 30  # one request and 50 tokens back
    refilled = await limiter.charge(key, 80)  # 40 + 50 = 90 tokens: enough
    assert refilled.allowed and math.floor(refilled.tokens_left) == 10
    clock.now += 30
    short = await limiter.charge(key, 70)  # 1 request, but 10 + 50 = 60 tokens < 70
    assert not short.allowed and short.refusal().type == "tokens"
    assert short.refusal().retry_after_s == 6  # 10 more tokens at 100 a minute

    too_big = await limiter.charge(key, 101)
    assert not too_big.allowed and "limit is 100 tokens per minute" in too_big.refusal().message
    other = await limiter.charge(key + "-other", 100)  # buckets are per key
    assert other.allowed


async def test_memory_buckets_meet_the_contract() -> None:
    await check_buckets(lambda rpm, tpm, clock: MemoryLimiter(rpm, tpm, clock=clock), "k")


async def test_a_zero_limit_is_off_and_has_no_headers() -> None:
    limiter = MemoryLimiter(1, 0, clock=Clock())
    quota = await limiter.charge("k", 10**9)
    assert quota.allowed and set(quota.headers()) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }
    assert make_limiter(ServerSettings(), None) is None
    assert isinstance(
        make_limiter(ServerSettings(rate_limit_tpm=10), "sqla+sqlite://"), MemoryLimiter
    )


def test_a_request_counts_its_prompt_estimate_and_its_reply_budget() -> None:
    request = TurnRequest(
        messages=[ChatMessage("system", "x" * 10), ChatMessage("user", "y" * 30)],
        params=GenerationParams(model="attune", max_tokens=16),
    )
    assert request_tokens(request) == 10 + 16  # 40 characters / 4, plus max_tokens


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.server.rate_limit_rpm = 2
    settings.server.rate_limit_tpm = 10_000
    return settings


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "attune", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_chat_past_the_limit_gets_429_with_headers_and_refills(api: Api) -> None:
    (_, alice), (_, bob) = api.new_user("alice"), api.new_user("bob")
    clock = Clock()
    limiter = gate_of(api.app).limiter
    assert isinstance(limiter, MemoryLimiter)
    limiter.clock = clock

    ok = await api.client.post(CHAT, json=_body(max_tokens=20), headers=api.auth(alice))
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    assert ok.headers["x-ratelimit-remaining-tokens"] == str(10_000 - 21)  # "hi" + 20
    async with api.client.stream(
        "POST", CHAT, json=_body(stream=True), headers=api.auth(alice)
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-ratelimit-remaining-requests"] == "0"
        await streamed.aread()

    over = await api.client.post(CHAT, json=_body(), headers=api.auth(alice))
    assert over.status_code == 429, over.text
    assert over.headers["Retry-After"] == "30"
    assert over.headers["x-ratelimit-remaining-requests"] == "0"
    assert over.headers["x-ratelimit-reset-requests"] == "1m0s"
    error = over.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limited"
    assert "requests per minute" in error["message"]
    assert (await api.client.post(CHAT, json=_body(), headers=api.auth(bob))).status_code == 200
    refused = api.services.metrics.registry.get_sample_value(
        "attune_refused_requests_total", {"reason": "rate_limited"}
    )
    assert refused == 1

    clock.now += 30  # one request refilled
    again = await api.client.post(CHAT, json=_body(), headers=api.auth(alice))
    assert again.status_code == 200 and again.headers["x-ratelimit-remaining-requests"] == "0"
