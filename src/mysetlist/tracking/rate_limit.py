"""Ingest rate limits with the `limits` library on Redis (fixed windows: one INCR per hit).

Scopes: per client IP for anonymous callers of our endpoint, per write key for Segment and
PostHog sources, per user for authenticated callers, and per client IP for failed write-key
checks (`auth_failure`: a client that keeps presenting unknown keys is refused before the
next lookup, each of which may cost a database query). Redis trouble never stops ingest: the
limiter fails open, logs, and stays open for a few seconds before trying Redis again (so a
dead Redis does not add a connect timeout to every request).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from mysetlist.core.errors import Problem
from mysetlist.tracking import monitoring

log = logging.getLogger(__name__)

FAIL_OPEN_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0
    scope: str = ""

    def raise_if_refused(self, what: str) -> None:
        """429 + Retry-After naming the limit (`what`) when the decision is a refusal."""
        if not self.allowed:
            monitoring.RATE_LIMITED.labels(self.scope).inc()
            raise Problem(
                429, "Too Many Requests", f"rate limit for this {what}",
                headers={"Retry-After": str(self.retry_after)},
            )  # fmt: skip


class IngestRateLimiter:
    def __init__(
        self,
        redis_url: str,
        *,
        anonymous: str,
        write_key: str,
        user: str,
        auth_failure: str = "30/minute",
        enabled: bool = True,
        key_prefix: str = "mysetlist",
    ) -> None:
        self.enabled = enabled
        self.limits: dict[str, RateLimitItem] = {
            "anonymous": parse(anonymous),
            "write_key": parse(write_key),
            "user": parse(user),
            "auth_failure": parse(auth_failure),
        }
        uri = "async+" + redis_url if redis_url.startswith("redis") else redis_url
        self.storage = RedisStorage(
            uri, implementation="redispy", wrap_exceptions=True,
            key_prefix=f"{key_prefix}:ratelimit", socket_connect_timeout=0.5, socket_timeout=0.5,
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
            monitoring.RATE_LIMITER_FAILED_OPEN.inc()
            log.warning(
                "rate limiter unavailable (Redis: %s); failing open for %s s",
                exc,
                FAIL_OPEN_SECONDS,
            )
            return Decision(True)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(False, retry, scope)
