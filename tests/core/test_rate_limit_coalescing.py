"""The rate limiter sends the hits of one identity that arrive together as one INCRBY, and
still refuses exactly the hits beyond the window's limit (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from mysetlist.core.rate_limit import RateLimiter

pytestmark = pytest.mark.db


def _limiter(redis_url: str, limit: str) -> tuple[RateLimiter, list[int]]:
    """A limiter with windows of its own (a fresh prefix), and the amounts of the INCRs it
    sends to Redis (the `limits` storage's calls, counted, still made)."""
    limiter = RateLimiter(redis_url, key_prefix=f"coalesce-{uuid.uuid4().hex[:8]}", api=limit)
    sent: list[int] = []
    incr = limiter.storage.incr

    async def counted(key: str, expiry: int, amount: int = 1) -> int:
        sent.append(amount)
        return await incr(key, expiry, amount=amount)

    limiter.storage.incr = counted  # type: ignore[method-assign]
    return limiter, sent


async def _refused(limiter: RateLimiter, identity: str) -> bool:
    decision = await limiter.hit("api", identity)
    assert decision.allowed or decision.retry_after >= 1  # a refusal says when to retry
    return not decision.allowed


async def test_concurrent_hits_over_the_limit_are_refused_exactly(redis_url: str) -> None:
    limiter, sent = _limiter(redis_url, "5/minute")
    refused = await asyncio.gather(*(_refused(limiter, "busy") for _ in range(12)))
    assert sorted(refused) == [False] * 5 + [True] * 7
    assert sum(sent) == 12  # every hit counted in the window
    # the window is used up for the next one too, and another identity has its own
    assert await _refused(limiter, "busy")
    assert not await _refused(limiter, "other")


async def test_hits_arriving_together_share_round_trips(redis_url: str) -> None:
    limiter, sent = _limiter(redis_url, "1000/minute")
    await asyncio.gather(*(limiter.hit("api", "busy") for _ in range(20)))
    # the first goes alone; the 19 that arrived while it was in flight go as one INCRBY
    assert sent == [1, 19]


async def test_sequential_hits_are_one_incr_each(redis_url: str) -> None:
    limiter, sent = _limiter(redis_url, "3/minute")
    refused: list[Any] = [await _refused(limiter, "one") for _ in range(4)]
    assert refused == [False, False, False, True]
    assert sent == [1, 1, 1, 1]


async def test_hits_waiting_on_a_dead_redis_fail_open_like_a_lone_hit() -> None:
    # nothing listens on port 1: the INCR in flight and the ones queued behind it all fail
    limiter = RateLimiter("redis://127.0.0.1:1/0", key_prefix="coalesce-dead", api="1/minute")
    decisions = await asyncio.wait_for(
        asyncio.gather(*(limiter.hit("api", "busy") for _ in range(5))), timeout=30
    )
    assert all(d.allowed for d in decisions)
