"""The per-client limit on failed authentications, for bearer tokens (JWTs).

Counted with the `limits` library in Redis in the same fixed window, under the same key,
as tracking's failed write-key checks (`auth_failure` scope of tracking/rate_limit.py,
MYSETLIST_RATE_LIMIT_AUTH_FAILURES): one client address, one budget of failures a window,
whatever it got wrong. Past it the client gets 429 with Retry-After.

Only failures touch Redis. Good callers pay nothing: a client that ran out is remembered in
this process until its window ends and refused before its token is even looked at (a JWKS
miss would fetch keys over the network). Redis trouble fails open, like the ingest limits.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from fastapi import Request
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from mysetlist.core.errors import Problem

log = logging.getLogger(__name__)

SCOPE = "auth_failure"  # shared with tracking/rate_limit.py's write-key failures
FAIL_OPEN_SECONDS = 5.0
_MAX_REMEMBERED = 10_000


def client_address(request: Request) -> str:
    """The caller's address (the proxy-resolved one behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


class AuthFailureLimiter:
    def __init__(
        self, redis_url: str, limit: str, *, key_prefix: str, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self.item = parse(limit)
        uri = "async+" + redis_url if redis_url.startswith("redis") else redis_url
        self.storage = RedisStorage(
            uri, implementation="redispy", wrap_exceptions=True,
            key_prefix=f"{key_prefix}:ratelimit", socket_connect_timeout=0.5, socket_timeout=0.5,
        )  # fmt: skip
        self.limiter = FixedWindowRateLimiter(self.storage)
        self._blocked_until: dict[str, float] = {}  # client -> epoch seconds
        self._open_until = 0.0

    def raise_if_blocked(self, client: str) -> None:
        until = self._blocked_until.get(client)
        if until is None:
            return
        now = time.time()
        if until <= now:
            del self._blocked_until[client]
            return
        raise _too_many(math.ceil(until - now))

    async def failed(self, client: str) -> None:
        """Count one failed authentication of `client`; 429 once it is over the limit."""
        if not self.enabled or time.monotonic() < self._open_until:
            return
        key = hashlib.blake2b(client.encode(), digest_size=12).hexdigest()
        try:
            if await self.limiter.hit(self.item, SCOPE, key):
                return
            stats = await self.limiter.get_window_stats(self.item, SCOPE, key)
        except Exception as exc:  # limits wraps storage errors; fail open
            self._open_until = time.monotonic() + FAIL_OPEN_SECONDS
            log.warning("auth-failure limiter unavailable (Redis: %s); failing open", exc)
            return
        if len(self._blocked_until) >= _MAX_REMEMBERED:
            now = time.time()
            self._blocked_until = {c: t for c, t in self._blocked_until.items() if t > now}
        self._blocked_until[client] = stats.reset_time
        raise _too_many(max(1, math.ceil(stats.reset_time - time.time())))


def _too_many(retry_after: int) -> Problem:
    return Problem(
        429, "Too Many Requests", "too many failed authentications from this client",
        headers={"Retry-After": str(max(1, retry_after))},
    )  # fmt: skip
