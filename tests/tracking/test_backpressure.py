"""A full group-commit queue answers 503 + Retry-After; nothing is acknowledged early."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from tests.conditions import until
from tests.conftest import serve_app
from tests.tracking.conftest import count_events, writer_waits_on_a_lock

pytestmark = pytest.mark.db


async def _queued_events(c: httpx.AsyncClient, expected: int) -> bool:
    """The writer's queue, as /metrics reports it, holds `expected` events."""
    text = (await c.get("/metrics")).text
    return f"mysetlist_group_commit_queue_events {float(expected)}" in text.splitlines()


async def test_full_queue_gives_503_and_acks_only_after_commit(
    settings: Settings,
    database_url: str,
    redis_url: str,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mysetlist.api import create_app

    monkeypatch.setenv("MYSETLIST_GROUP_COMMIT_MAX_QUEUE", "4")
    monkeypatch.setenv("MYSETLIST_GROUP_COMMIT_CONNECTIONS", "1")
    marker = "bp-" + uuid.uuid4().hex
    app = create_app(settings, database_url, redis_url)
    with serve_app(app) as url:
        # Hold the dedup table so the writer's transaction blocks mid-flush.
        blocker = await psycopg.AsyncConnection.connect(database_url)
        await blocker.execute("LOCK TABLE analytics.event_dedup IN EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            body = {"event_type": "search", "anonymous_id": marker}

            async def post() -> httpx.Response:
                return await c.post("/api/analytics/events", json=body)

            first = asyncio.create_task(post())  # taken by the (now blocked) flush
            await until(lambda: writer_waits_on_a_lock(runtime), "the writer to wait on the lock")
            queued = [asyncio.create_task(post()) for _ in range(4)]  # fills the queue
            await until(lambda: _queued_events(c, 4), "4 events queued")
            rejected = await post()
            assert not first.done()
            assert not any(t.done() for t in queued)  # no ack before commit
            assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0
            await blocker.rollback()
            await blocker.close()
            done = await asyncio.gather(first, *queued)
    assert rejected.status_code == 503, rejected.text
    assert int(rejected.headers["retry-after"]) >= 1
    assert [r.status_code for r in done] == [202] * 5
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 5


async def test_writer_survives_a_killed_database_connection(api_url: str, runtime: Runtime) -> None:
    marker = "reconnect-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            "/api/analytics/events", json={"event_type": "search", "anonymous_id": marker}
        )
        assert r.status_code == 202
        async with runtime.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'mysetlist-group-commit'"
                " AND datname = current_database()"
            )
            killed = (await cur.fetchone() or [0])[0]
        assert killed >= 1
        for _ in range(3):  # every writer connection is dead; each flush reconnects and retries
            r = await c.post(
                "/api/analytics/events", json={"event_type": "search", "anonymous_id": marker}
            )
            assert r.status_code == 202, r.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 4
