"""Per-user cache generations in Redis: a counter per user that anything caching answers
about the user puts in its cache keys, and that whatever changes the user's data bumps, so
every cached answer about the user is invalidated at once (old keys expire unread).

Tracking bumps it when it ingests a user's `follow`, `unfollow` or `vote`; the ML routes key
their cached recommendations on it. Best effort: callers treat a Redis error as "no cache".
"""

from __future__ import annotations

from collections.abc import Iterable

from mysetlist.core.redis_client import RedisClient

# Event types after which a user's cached recommendations are stale.
INVALIDATING_EVENTS = frozenset({"follow", "unfollow", "vote"})
GENERATION_TTL_SECONDS = 30 * 24 * 3600  # longer than any cached answer lives


def generation_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:user-cache-gen:{user_id}"


async def cache_generation(redis: RedisClient, prefix: str, user_id: str) -> int:
    value = await redis.get(generation_key(prefix, user_id))
    return int(value) if value is not None else 0


async def bump_cache_generations(redis: RedisClient, prefix: str, user_ids: Iterable[str]) -> None:
    users = sorted(set(user_ids))
    if not users:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in users:
            key = generation_key(prefix, user_id)
            pipe.incr(key)
            pipe.expire(key, GENERATION_TTL_SECONDS)
        await pipe.execute()
