"""A database that cannot answer in time is a 503 with Retry-After, never a 500: every
pooled connection busy for the pool's timeout (overload), or the connection lost mid-request
(a restart). Then the pool serves again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.config import load_settings
from tests.conditions import until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, serve_app

pytestmark = pytest.mark.db


async def test_a_busy_pool_and_a_lost_connection_are_503s_and_the_pool_recovers(
    database_url: str, redis_url: str, tmp_path: Any, token_for: Any
) -> None:
    from mysetlist.api import create_app

    settings = load_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, MYSETLIST_DATA_DIR=str(tmp_path),
        JWT_SECRET=TEST_JWT_SECRET, MYSETLIST_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
        MYSETLIST_DB_POOL_MAX="1", MYSETLIST_DB_POOL_TIMEOUT_SECONDS="0.5",
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
    path = "/api/me/follows"
    app = create_app(settings, database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get(path, headers=headers)).status_code == 200
            # The pool's one connection waits on a lock this test holds.
            with psycopg.connect(database_url, autocommit=True) as locker:
                locker.execute("BEGIN")
                locker.execute("LOCK TABLE app.follows IN ACCESS EXCLUSIVE MODE")
                stuck = asyncio.create_task(client.get(path, headers=headers))

                async def waiting_backend() -> int | None:
                    with psycopg.connect(database_url, autocommit=True) as probe:
                        row = probe.execute(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                            " AND wait_event_type = 'Lock' AND pid <> %s",
                            (locker.info.backend_pid,),
                        ).fetchone()
                    return None if row is None else int(row[0])

                pid = await until(waiting_backend, "the request waiting on the lock")
                busy = await client.get(path, headers=headers)
                assert busy.status_code == 503, busy.text
                assert busy.headers["Retry-After"] == "1"
                assert busy.headers["content-type"].startswith("application/problem+json")

                # The stuck request's connection is cut, as a restart would.
                locker.execute("SELECT pg_terminate_backend(%s)", (pid,))
                lost = await stuck
                assert lost.status_code == 503, lost.text
                assert lost.headers["Retry-After"] == "5"
                locker.execute("ROLLBACK")
            # The pool replaced the dead connection: the next request is served.
            assert (await client.get(path, headers=headers)).status_code == 200


async def test_rollback_inside_a_transaction_is_suppressed_and_nothing_lands(
    runtime: Any,
) -> None:
    """`raise psycopg.Rollback()` ends the transaction quietly, as psycopg's own block does:
    the retry loop around BEGIN (core/db.py) must not run the body a second time."""
    table = f"rollback_probe_{uuid.uuid4().hex[:8]}"
    runs = 0
    async with runtime.db.transaction() as conn:
        runs += 1
        await conn.execute(f"CREATE TABLE public.{table} (id int)")
        raise psycopg.Rollback()
    async with runtime.db.as_role("service_role", {}) as conn:
        runs += 1
        await conn.execute("SELECT 1")
        raise psycopg.Rollback()
    assert runs == 2
    async with runtime.db.transaction() as conn:
        cur = await conn.execute("SELECT to_regclass(%s)", (f"public.{table}",))
        row = await cur.fetchone()
    assert row is not None
    assert row[0] is None  # rolled back, on every connection
