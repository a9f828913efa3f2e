"""Rate limits by scope, with the `limits` library on Redis (fixed windows: one INCR per hit).

A limiter holds one limit per scope (`anonymous`, `write_key`, …: each capability names its
own) and counts an identity's hits in that scope's window; identities are hashed before
they reach Redis. Redis trouble never stops the caller: the limiter fails open, logs, and
stays open for a few seconds before trying Redis again (so a dead Redis does not add a
connect timeout to every request).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from prometheus_client import Counter

from mysetlist.core.errors import RateLimited
from mysetlist.core.redis_client import limits_storage

log = logging.getLogger(__name__)

FAIL_OPEN_SECONDS = 5.0

RATE_LIMITED = Counter("mysetlist_rate_limited_total", "Requests answered 429", ["scope"])
RATE_LIMITER_FAILED_OPEN = Counter(
    "mysetlist_rate_limiter_failed_open_total",
    "Times the rate limiter found Redis unavailable and let requests through unlimited",
)


class RateLimitExceeded(RateLimited):
    """An identity used up its scope's window."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0
    scope: str = ""
    resets_at: float = 0.0  # Unix time the refusing window ends

    def raise_if_refused(self, what: str) -> None:
        """RateLimitExceeded (429 + Retry-After) naming the limit (`what`) when refused."""
        if not self.allowed:
            RATE_LIMITED.labels(self.scope).inc()
            raise RateLimitExceeded(f"rate limit for this {what}", retry_after=self.retry_after)


class RateLimiter:
    """One fixed-window limit per scope, e.g. `RateLimiter(url, anonymous="300/second")`
    (the `limits` library's notation)."""

    def __init__(
        self,
        redis_url: str,
        *,
        enabled: bool = True,
        key_prefix: str = "mysetlist",
        **limits: str,
    ) -> None:
        self.enabled = enabled
        self.limits: dict[str, RateLimitItem] = {
            scope: parse(limit) for scope, limit in limits.items()
        }
        self.storage = limits_storage(
            redis_url, wrap_exceptions=True, key_prefix=f"{key_prefix}:ratelimit",
            socket_connect_timeout=0.5, socket_timeout=0.5,
        )  # fmt: skip
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._open_until = 0.0

    async def hit(self, scope: str, identity: str) -> Decision:
        """Count one request of `identity` in `scope`; refused once the window is used up."""
        return await self._decide(scope, identity, self.limiter.hit)

    async def peek(self, scope: str, identity: str) -> Decision:
        """Whether `identity` still has room in `scope`, without counting anything."""
        return await self._decide(scope, identity, self.limiter.test)

    async def _decide(
        self,
        scope: str,
        identity: str,
        check: Callable[[RateLimitItem, str, str], Awaitable[bool]],
    ) -> Decision:
        if not self.enabled:
            return Decision(True)
        now = time.monotonic()
        if now < self._open_until:
            return Decision(True)
        item = self.limits[scope]
        key = hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()
        try:
            if await check(item, scope, key):
                return Decision(True)
            stats = await self.limiter.get_window_stats(item, scope, key)
        except Exception as exc:  # limits wraps storage errors; fail open
            self._open_until = now + FAIL_OPEN_SECONDS
            RATE_LIMITER_FAILED_OPEN.inc()
            log.warning(
                "rate limiter unavailable (Redis: %s); failing open for %s s",
                exc,
                FAIL_OPEN_SECONDS,
            )
            return Decision(True)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(False, retry, scope, stats.reset_time)
