"""Rate limits in the real Redis: the buckets' contract, and one budget shared by processes.

Two :class:`RedisLimiter` instances with their own connections stand for two server
processes. Every test uses its own key prefix, so runs in parallel do not share buckets.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis import asyncio as aioredis

from api.limits import RedisLimiter, make_limiter
from tests.integration.test_workers import redis_url
from tests.unit.test_rate_limits import Clock, check_buckets
from wiring.settings import ServerSettings

__all__ = ["redis_url"]  # a fixture, used by name

Make = Callable[..., RedisLimiter]


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Make]:
    """Build limiters on one fresh prefix; close them and delete their keys afterwards."""
    prefix = f"attune-test:ratelimit:{uuid.uuid4().hex[:12]}:"
    made: list[RedisLimiter] = []

    def build(rpm: int, tpm: int, clock: Clock | None = None) -> RedisLimiter:
        limiter = RedisLimiter.from_url(redis_url, rpm, tpm, prefix=prefix, clock=clock)
        made.append(limiter)
        return limiter

    yield build
    cleanup = aioredis.Redis.from_url(redis_url)
    keys = [k async for k in cleanup.scan_iter(match=prefix + "*")]
    if keys:
        await cleanup.delete(*keys)
    await cleanup.aclose()
    for limiter in made:
        await limiter.aclose()


async def test_redis_buckets_meet_the_contract(make: Make) -> None:
    await check_buckets(lambda rpm, tpm, clock: make(rpm, tpm, clock), "k")


async def test_two_limiters_share_one_budget(make: Make) -> None:
    clock = Clock()
    one, two = make(10, 0, clock), make(10, 0, clock)
    # 30 requests at once, spread over both "processes": exactly the bucket's 10 pass.
    quotas = await asyncio.gather(
        *(limiter.charge("shared", 1) for _ in range(15) for limiter in (one, two))
    )
    assert sum(q.allowed for q in quotas) == 10
    refused = await two.charge("shared", 1)
    assert not refused.allowed and refused.refusal().retry_after_s == 6

    clock.now += 12  # 2 requests back, whichever process asks
    assert (await one.charge("shared", 1)).allowed
    assert (await two.charge("shared", 1)).allowed
    assert not (await one.charge("shared", 1)).allowed


async def test_redis_time_is_the_clock_when_none_is_given(make: Make) -> None:
    limiter = make(1, 0)
    assert (await limiter.charge("k", 1)).allowed
    late = await limiter.charge("k", 1)
    assert not late.allowed and 1 <= late.refusal().retry_after_s <= 60


async def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RedisLimiter.from_url("redis://127.0.0.1:1/0", 1, 0)
    try:
        assert (await limiter.charge("k", 1)).allowed
        assert (await limiter.charge("k", 1)).allowed
    finally:
        await limiter.aclose()


async def test_the_broker_redis_is_used_when_none_is_set(redis_url: str) -> None:
    for limiter in (
        make_limiter(ServerSettings(rate_limit_rpm=5), redis_url),
        make_limiter(ServerSettings(rate_limit_rpm=5, rate_limit_redis_url=redis_url), None),
    ):
        assert isinstance(limiter, RedisLimiter)
        await limiter.aclose()
