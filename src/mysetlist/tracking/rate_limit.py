"""Ingest rate limits with the `limits` library on Redis (fixed windows: one INCR per hit).

Scopes: per client IP for anonymous callers of our endpoint, per write key for Segment and
PostHog sources, per user for authenticated callers. Redis trouble never stops ingest: the
limiter fails open, logs, and stays open for a few seconds before trying Redis again (so a
dead Redis does not add a connect timeout to every request).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from mysetlist.tracking import monitoring

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0


class IngestRateLimiter:
    def __init__(
        self,
        redis_url: str,
        *,
        anonymous: str,
        write_key: str,
        user: str,
        enabled: bool = True,
        key_prefix: str = "mysetlist",
    ) -> None:
        self.enabled = enabled
        self.limits: dict[str, RateLimitItem] = {
            "anonymous": parse(anonymous),
            "write_key": parse(write_key),
            "user": parse(user),
        }
        uri = "async+" + redis_url if redis_url.startswith("redis") else redis_url
        self.storage = RedisStorage(
            uri, implementation="redispy", wrap_exceptions=True,
            key_prefix=f"{key_prefix}:ratelimit", socket_connect_timeout=0.5, socket_timeout=0.5,
        )  # fmt: skip
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._open_until = 0.0

    async def hit(self, scope: str, identity: str) -> Decision:
        if not self.enabled:
            return Decision(True)
        now = time.monotonic()
        if now < self._open_until:
            return Decision(True)
        item = self.limits[scope]
        key = hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()
        try:
            if await self.limiter.hit(item, scope, key):
                return Decision(True)
            stats = await self.limiter.get_window_stats(item, scope, key)
        except Exception as exc:  # limits wraps storage errors; fail open
            self._open_until = now + 5.0
            log.warning("rate limiter unavailable (Redis: %s); failing open for 5 s", exc)
            return Decision(True)
        monitoring.RATE_LIMITED.labels(scope).inc()
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(False, retry)
