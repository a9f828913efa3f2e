"""The per-client limit on failed authentications, for bearer tokens (JWTs).

Counted by `core.rate_limit` in Redis in the same fixed window, under the same key, as
tracking's failed write-key checks (its `auth_failure` scope, MYSETLIST_RATE_LIMIT_AUTH_FAILURES):
one client address, one budget of failures a window, whatever it got wrong. Past it the
client gets 429 with Retry-After.

Only failures touch Redis. Good callers pay nothing: a client that ran out is remembered in
this process until its window ends and refused before its token is even looked at (a JWKS
miss would fetch keys over the network). Redis trouble fails open, like every rate limit.
"""

from __future__ import annotations

import math
import time

from fastapi import Request

from mysetlist.core.errors import RateLimited
from mysetlist.core.rate_limit import RateLimiter

SCOPE = "auth_failure"  # shared with tracking's write-key failures
_MAX_REMEMBERED = 10_000


class TooManyAuthFailures(RateLimited):
    """The client failed to authenticate too often this window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed authentications from this client", retry_after=retry_after
        )


def client_address(request: Request) -> str:
    """The caller's address (the proxy-resolved one behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


class AuthFailureLimiter:
    def __init__(
        self, redis_url: str, limit: str, *, key_prefix: str, enabled: bool = True
    ) -> None:
        self.limiter = RateLimiter(
            redis_url, enabled=enabled, key_prefix=key_prefix, **{SCOPE: limit}
        )
        self._blocked_until: dict[str, float] = {}  # client -> epoch seconds

    def raise_if_blocked(self, client: str) -> None:
        until = self._blocked_until.get(client)
        if until is None:
            return
        now = time.time()
        if until <= now:
            del self._blocked_until[client]
            return
        raise TooManyAuthFailures(math.ceil(until - now))

    async def failed(self, client: str) -> None:
        """Count one failed authentication of `client`; 429 once it is over the limit."""
        decision = await self.limiter.hit(SCOPE, client)
        if decision.allowed:
            return
        if len(self._blocked_until) >= _MAX_REMEMBERED:
            now = time.time()
            self._blocked_until = {c: t for c, t in self._blocked_until.items() if t > now}
        self._blocked_until[client] = decision.resets_at
        raise TooManyAuthFailures(decision.retry_after)
