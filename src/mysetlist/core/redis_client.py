"""The Redis-protocol client (Redis or Valkey, one server or a Redis Cluster). Live metrics
are best effort: callers catch `redis.RedisError` and report "degraded" rather than failing
the request.

A Redis Cluster is `REDIS_URL=redis+cluster://host:port[,host:port...]` (any of its masters;
the client learns the rest from the cluster). On a cluster a command that touches several
keys (ZUNION, MGET, MULTI/EXEC, a script) works only when they hash to one slot: such keys
share a hash tag, the part in braces (`mysetlist:live:{shows}:<minute>`).

When no node of a cluster answers (every master down or unreachable), redis-py's cluster
client raises `RedisClusterUnreachableError`, which is not a `RedisError`: the callers'
`except RedisError` missed it and a Redis Cluster outage answered 500s where one Redis
server's outage degrades. The cluster client built here raises it as `RedisUnreachable`, a
`redis.ConnectionError`, from commands and pipelines alike.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from limits.aio.storage import RedisClusterStorage, RedisStorage
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisClusterUnreachableError

CLUSTER_SCHEME = "redis+cluster://"

# What a process talks to: one server, or a cluster (same commands; pipelines on a cluster
# split by slot).
RedisClient = aioredis.Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The `host:port` pairs of a `redis+cluster://h:p,h:p` URL."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        nodes.append((host or part, int(port) if port else 6379))
    return nodes


class RedisUnreachable(RedisConnectionError):
    """No node of the Redis Cluster could be reached (a `redis.RedisError`)."""


class _ClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except RedisClusterUnreachableError as exc:
            raise RedisUnreachable(str(exc)) from exc


class _Cluster(RedisCluster):
    """redis-py's cluster client whose outage error is a `RedisError` (module docstring)."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except RedisClusterUnreachableError as exc:
            raise RedisUnreachable(str(exc)) from exc

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]


def make_redis(url: str) -> RedisClient:
    options: dict[str, Any] = {
        "socket_connect_timeout": 1.0,
        "socket_timeout": 1.0,
        "decode_responses": False,
    }
    if is_cluster_url(url):
        password = urlsplit(url).password
        return _Cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster_nodes(url)],
            password=password,
            **options,
        )
    return aioredis.from_url(url, health_check_interval=15, **options)


def limits_storage(
    url: str, *, key_prefix: str, **options: Any
) -> RedisStorage | RedisClusterStorage:
    """The `limits` library's async storage on our Redis (one server or a cluster): the one
    way a rate limiter is built (each limit's keys are single keys, so any slot does)."""
    if is_cluster_url(url):
        uri = "async+redis+cluster://" + url[len(CLUSTER_SCHEME) :]
        return RedisClusterStorage(uri, implementation="redispy", key_prefix=key_prefix, **options)
    uri = "async+" + url if url.startswith("redis") else url
    return RedisStorage(uri, implementation="redispy", key_prefix=key_prefix, **options)
