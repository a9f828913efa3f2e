"""rateLimitPerMinute, globally (every worker process together, through Redis) and per
provider, with the `limits` library's moving window: in no 60-second span do more messages
leave than the limit. A send waits for room rather than failing."""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter

from mysetlist.core.redis_client import limits_storage

# The window counted is a second longer than a minute: a message is counted just before it
# leaves, and its arrival lags by a few milliseconds to a second (measured at the bench's
# sink: 1,016 in one 60 s span with an exact minute), so the receiver's minute still sees
# at most the limit.
WINDOW_SECONDS = 61


def per_minute_limit(amount: int) -> RateLimitItem:
    return RateLimitItemPerSecond(amount, WINDOW_SECONDS)


class SendRateLimiter:
    def __init__(
        self,
        redis_url: str,
        *,
        per_minute: int,
        per_provider: dict[str, int],
        key_prefix: str,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(
            limits_storage(redis_url, key_prefix=f"{key_prefix}:notify-rate")
        )
        self._global: RateLimitItem | None = (
            per_minute_limit(per_minute) if per_minute > 0 else None
        )
        self._providers: dict[str, RateLimitItem] = {
            name: per_minute_limit(limit) for name, limit in per_provider.items() if limit > 0
        }

    async def _take(self, item: RateLimitItem, key: str) -> None:
        while not await self._limiter.hit(item, key):
            stats = await self._limiter.get_window_stats(item, key)
            # The window frees a slot at reset_time; wait for it (never send over the limit).
            await asyncio.sleep(max(0.01, min(1.0, stats.reset_time - time.time())))

    async def before_send(self, provider: str) -> None:
        if self._global is not None:
            await self._take(self._global, "all")
        own = self._providers.get(provider)
        if own is not None:
            await self._take(own, provider)
