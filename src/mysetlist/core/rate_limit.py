"""Rate limits by scope, with the `limits` library on Redis (fixed windows: one INCR per hit;
hits of one identity that arrive while its INCR is on the way go together as one INCRBY).

A limiter holds one limit per scope (`anonymous`, `write_key`, …: each capability names its
own) and counts an identity's hits in that scope's window; identities are hashed before
they reach Redis. Redis trouble never stops the caller: the limiter fails open, logs, and
stays open for a few seconds before trying Redis again (so a dead Redis does not add a
connect timeout to every request).
"""

from __future__ import annotations

import asyncio
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
        # Per window counter with an INCR in flight: the hits that arrived meanwhile.
        self._queued: dict[str, list[asyncio.Future[int]]] = {}
        self._serving: set[asyncio.Task[None]] = set()

    async def hit(self, scope: str, identity: str) -> Decision:
        """Count one request of `identity` in `scope`; refused once the window is used up."""
        return await self._decide(scope, identity, self._hit)

    async def _hit(self, item: RateLimitItem, scope: str, key: str) -> bool:
        return await self._count(item, item.key_for(scope, key)) <= item.amount

    async def _count(self, item: RateLimitItem, counter: str) -> int:
        """This hit's place in its window (what its own INCR would have returned). A lone hit
        is one INCR; hits of the same counter arriving while one is in flight wait, and go
        as one INCRBY n once it returns, each given its own count: the first `amount` of a
        window pass and the rest are refused, as with an INCR each, in fewer round trips
        (a busy write key's requests, or many behind one address)."""
        queued = self._queued.get(counter)
        if queued is not None:
            waiting: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            queued.append(waiting)
            return await waiting
        self._queued[counter] = []
        try:
            return await self.storage.incr(counter, item.get_expiry())
        finally:
            self._serve_queued(item, counter)

    def _serve_queued(self, item: RateLimitItem, counter: str) -> None:
        if not self._queued[counter]:
            del self._queued[counter]
            return
        task = asyncio.get_running_loop().create_task(self._serve(item, counter))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, item: RateLimitItem, counter: str) -> None:
        """One INCRBY for the hits queued on `counter`, again until none arrived meanwhile."""
        while batch := self._queued[counter]:
            self._queued[counter] = []
            try:
                total = await self.storage.incr(counter, item.get_expiry(), amount=len(batch))
            except BaseException as exc:  # each waiter decides (fails open) as a lone hit would
                for waiting in batch:
                    if not waiting.done():
                        waiting.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):  # shutting down: nobody waits
                    for waiting in self._queued.pop(counter):
                        waiting.cancel()
                    raise
                continue
            first = total - len(batch)
            for place, waiting in enumerate(batch, start=1):
                if not waiting.done():  # a waiter whose request was cancelled
                    waiting.set_result(first + place)
        del self._queued[counter]

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
