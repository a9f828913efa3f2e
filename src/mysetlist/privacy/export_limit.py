"""How many exports a caller may ask for: a moving window per caller in Redis, through
`limits` (MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT). An export reads every table about a user."""

from __future__ import annotations

from datetime import datetime

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from mysetlist.core.redis_client import limits_storage
from mysetlist.privacy.errors import ExportRateLimited


class ExportLimiter:
    """Exports per caller, in Redis under `<key_prefix>:privacy-rate`."""

    def __init__(self, redis_url: str, *, key_prefix: str, limit: str) -> None:
        self.item = parse(limit)
        self.limiter = MovingWindowRateLimiter(
            limits_storage(redis_url, key_prefix=f"{key_prefix}:privacy-rate")
        )

    async def check(self, caller: str) -> None:
        """Count one export of `caller`; ExportRateLimited when over the limit."""
        if not await self.limiter.hit(self.item, "export", caller):
            stats = await self.limiter.get_window_stats(self.item, "export", caller)
            retry = max(1, int(stats.reset_time - datetime.now().timestamp()) + 1)
            raise ExportRateLimited(f"exports are limited to {self.item}", retry_after=retry)
