"""The Redis-protocol client (Redis or Valkey). Live metrics are best effort: callers catch
`redis.RedisError` and report "degraded" rather than failing the request."""

from __future__ import annotations

import redis.asyncio as aioredis


def make_redis(url: str) -> aioredis.Redis:
    return aioredis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
        decode_responses=False,
    )
