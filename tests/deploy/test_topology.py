"""The scaled-out topology (deploy/local-cluster/up.sh) with the real servers it starts:
haproxy in front of 2 API processes, pgbouncer in transaction mode, a streaming replica, a
Redis Cluster of 3 masters. Runs where up.sh's exports are set (`MYSETLIST_TOPOLOGY=1`,
`API_URL`, `DATABASE_DIRECT_URL`, `DATABASE_REPLICA_URL`, a `redis+cluster://` REDIS_URL),
as in CI's topology stage; skipped elsewhere.

Each test speaks to the topology's own database (the one the API processes serve), and
marks its rows with a fresh id, so it counts only its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.config import Settings, load_settings
from mysetlist.core.job_queue import hold_task_lock
from mysetlist.core.live_metrics import read_live_metrics, shows_key
from mysetlist.core.rate_limit import RateLimiter
from mysetlist.core.redis_client import is_cluster_url
from mysetlist.core.runtime import Runtime, open_runtime
from tests.conditions import wait_until

TOPOLOGY = os.environ.get("MYSETLIST_TOPOLOGY") == "1" and all(
    os.environ.get(name)
    for name in ("API_URL", "DATABASE_DIRECT_URL", "DATABASE_REPLICA_URL", "REDIS_URL")
)
pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(not TOPOLOGY, reason="needs deploy/local-cluster/up.sh's exports"),
]


@pytest.fixture(scope="module")
def topology_settings() -> Settings:
    """The settings the topology's processes run with (up.sh's exports; the JWT secret is
    the one generated into their shared MYSETLIST_DATA_DIR)."""
    return load_settings()


@pytest.fixture(scope="module")
async def topology_runtime(topology_settings: Settings) -> AsyncIterator[Runtime]:
    settings = topology_settings
    assert settings.database_url is not None
    assert settings.redis_url is not None
    runtime = await open_runtime(settings, settings.database_url, settings.redis_url)
    yield runtime
    await runtime.close()


@pytest.fixture
def api() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=os.environ["API_URL"], timeout=30) as client:
        yield client


def _direct() -> psycopg.Connection[Any]:
    return psycopg.connect(os.environ["DATABASE_DIRECT_URL"], autocommit=True)


def _replica() -> psycopg.Connection[Any]:
    return psycopg.connect(os.environ["DATABASE_REPLICA_URL"], autocommit=True)


def test_the_urls_are_the_topologys(topology_settings: Settings) -> None:
    """What every other test here relies on: the pooler, the primary and the replica are
    three servers, and Redis is a cluster."""
    with psycopg.connect(str(topology_settings.database_url), prepare_threshold=None) as pooled:
        assert pooled.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with _replica() as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert is_cluster_url(str(topology_settings.redis_url))


def test_ingest_through_haproxy_is_stored_once_acknowledged(api: httpx.Client) -> None:
    """Every 202 from either API process behind haproxy is a stored row (group commit's
    COPY through pgbouncer, no prepared statements)."""
    marker = "topology-" + uuid.uuid4().hex
    for _ in range(20):
        response = api.post(
            "/api/analytics/events", json={"event_type": "search", "anonymous_id": marker}
        )
        assert response.status_code == 202, response.text
    with _direct() as conn:
        row = conn.execute(
            "SELECT count(*) FROM analytics.user_events WHERE anonymous_id = %s", (marker,)
        ).fetchone()
    assert row == (20,)


def _replayed(lsn: str) -> bool:
    with _replica() as replica:
        row = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
    return bool(row and row[0])


def _lag_gauge(metrics: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith("mysetlist_db_replica_lag_seconds "):
            return float(line.split()[1])
    return None


def test_the_dashboard_reads_the_replica_and_the_primary_once_it_lags(
    api: httpx.Client, topology_settings: Settings
) -> None:
    """A panel answers from the replica: with its replay paused, a run committed on the
    primary is missing from the panel while the replica is within its lag bound, and shown
    (from the primary) once the replica is further behind than the bound."""
    from mysetlist.core.auth import mint_token

    token = mint_token(topology_settings, str(uuid.uuid4()), admin=True)
    headers = {"Authorization": f"Bearer {token}"}
    marker = "topology-" + uuid.uuid4().hex

    def panel_errors() -> list[Any]:
        response = api.get("/api/analytics/dashboard/panels/etl_runs", headers=headers)
        assert response.status_code == 200, response.text
        return [run.get("error") for run in response.json()["data"] or []]

    with _direct() as primary, _replica() as replica:
        # A commit replayed just now, so the lag (now - the last replayed commit's time)
        # starts near 0 when replay pauses.
        primary.execute("SELECT txid_current()")
        lsn = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert lsn is not None
        wait_until(lambda: _replayed(lsn[0]), "the replica to replay the primary")
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            paused_at = time.monotonic()
            run_id = primary.execute(
                "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, error)"
                " VALUES ('api', 'daily', '{}', 'cancelled', %s) RETURNING id",
                (marker,),
            ).fetchone()
            assert run_id is not None
            # Within the bound the replica answers: the new run is not there.
            assert marker not in panel_errors()
            assert time.monotonic() - paused_at < topology_settings.database_replica_max_lag_seconds
            # Past it, the primary answers (both API processes, whichever haproxy picks).
            wait_until(
                lambda: all(marker in panel_errors() for _ in range(4)),
                "the dashboard to read the primary while the replica lags",
            )
            wait_until(
                lambda: (
                    (lag := _lag_gauge(api.get("/metrics").text)) is not None
                    and lag > topology_settings.database_replica_max_lag_seconds
                ),
                "the replica lag gauge to show the lag",
            )
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
        primary.execute("DELETE FROM analytics.etl_runs WHERE id = %s", run_id)
    # Caught up again, the replica serves again: its lag is back under the bound.
    wait_until(
        lambda: (
            (lag := _lag_gauge(api.get("/metrics").text)) is not None
            and lag <= topology_settings.database_replica_max_lag_seconds
        ),
        "the replica to catch up",
    )


async def test_listen_wakes_up_behind_pgbouncer(topology_runtime: Runtime) -> None:
    """The inbox's LISTEN goes direct; a NOTIFY sent through pgbouncer (as the delivering
    transaction does) wakes the user's stream."""
    from mysetlist.notify.inbox.service import InboxHub

    hub = InboxHub(topology_runtime.direct_url)
    user_id = str(uuid.uuid4())
    try:
        async with hub.subscribe(user_id) as stream:
            await asyncio.wait_for(hub.listening.wait(), timeout=10)
            stream.woken.clear()
            async with topology_runtime.db.transaction() as conn:  # through pgbouncer
                await conn.execute("SELECT pg_notify('notify_inbox', %s)", (user_id,))
            await asyncio.wait_for(stream.woken.wait(), timeout=10)
    finally:
        await hub.close()


async def test_the_task_lock_holds_across_transactions_on_the_direct_url(
    topology_runtime: Runtime, topology_settings: Settings
) -> None:
    """A session advisory lock taken through pgbouncer would stay on a server connection
    another client gets next; the task lock is held on a direct session, so a second
    process finds it taken while the first runs, and free after."""
    name = f"test.topology_{uuid.uuid4().hex[:8]}"
    assert topology_settings.database_url is not None
    other = await open_runtime(
        topology_settings, topology_settings.database_url, str(topology_settings.redis_url)
    )
    try:
        async with hold_task_lock(topology_runtime.db, name) as held:
            assert held
            # Work in between goes through the pooler, on whatever server connection.
            for _ in range(10):
                async with topology_runtime.db.transaction() as conn:
                    await conn.execute("SELECT 1")
            async with hold_task_lock(other.db, name) as second:
                assert not second
        async with hold_task_lock(other.db, name) as after:
            assert after
    finally:
        await other.close()


async def test_multi_key_redis_commands_work_on_the_cluster(topology_runtime: Runtime) -> None:
    """The live metrics' one ZUNION over an hour of minute keys (hash-tagged into one slot)
    and a rate limiter (the `limits` cluster storage) on the Redis Cluster."""
    redis = topology_runtime.redis
    prefix = "topology-test-" + uuid.uuid4().hex[:8]
    now = time.time()
    minute = int(now // 60)
    for back, show in enumerate(("a", "b", "a")):
        await redis.zincrby(shows_key(prefix, minute - back), 1, show)
    live = await read_live_metrics(redis, prefix=prefix, now=now)
    assert live["status"] == "ok", live
    assert live["active_shows"] == [
        {"show_id": "a", "score": 2},
        {"show_id": "b", "score": 1},
    ]
    limiter = RateLimiter(str(topology_runtime.redis_url), key_prefix=prefix, user="2/minute")
    decisions = [await limiter.hit("user", "someone") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after >= 1


def test_haproxy_cuts_off_a_client_that_never_finishes_its_body() -> None:
    """A client that sends headers but not the body it announced is answered 408 by haproxy
    (`timeout http-request`, the whole body buffered) and never reaches an API process."""
    host, port = os.environ["API_URL"].removeprefix("http://").rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/analytics/events HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event_'
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 20
