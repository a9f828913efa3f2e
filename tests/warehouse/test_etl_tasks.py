"""The ETL task bodies on a real procrastinate worker when another run holds the run lock:
the incremental tick skips (its job succeeds, no run is recorded), an API-queued run's
job gives up waiting and is scheduled again by the retry policy, its run still queued."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import procrastinate
import psycopg
import pytest

from mysetlist.core.db import Database, session_url
from mysetlist.core.job_queue import advisory_unlock, try_advisory_lock, worker_context
from mysetlist.core.runtime import Runtime
from mysetlist.jobs import make_job_app
from mysetlist.warehouse import runs
from mysetlist.warehouse.claiming import LOCK_NAME
from mysetlist.warehouse.jobs import DAILY_TASK, INCREMENTAL_TASK
from tests.conditions import until
from tests.warehouse.conftest import one

pytestmark = pytest.mark.db


@pytest.fixture
async def run_lock_held(database_url: str) -> AsyncIterator[None]:
    """Another run "executes": this session holds the ETL's run lock."""
    async with await psycopg.AsyncConnection.connect(
        session_url(database_url), autocommit=True
    ) as conn:
        assert await try_advisory_lock(conn, LOCK_NAME)
        yield
        await advisory_unlock(conn, LOCK_NAME)


@contextlib.asynccontextmanager
async def worker(app: procrastinate.App, runtime: Runtime) -> AsyncIterator[None]:
    """A worker whose tasks receive this session's runtime in their job context."""
    async with app.open_async():
        task = asyncio.create_task(
            app.run_worker_async(
                queues=[runs.QUEUE],
                concurrency=1,
                install_signal_handlers=False,
                wait=True,
                additional_context=worker_context(runtime),
            )
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 10)


async def _job(database_url: str, job_id: int, *, settled: Any) -> dict[str, Any]:
    """Poll the job's row until `settled(row)` holds (30 s at most)."""
    db = Database(database_url, min_size=1, max_size=1)
    await db.open()

    async def row() -> dict[str, Any] | None:
        found = await db.fetch_one(
            "SELECT status, attempts, scheduled_at FROM procrastinate_jobs WHERE id = %s",
            (job_id,),
        )
        return found if found is not None and settled(found) else None

    try:
        return await until(row, f"job {job_id} to settle")
    finally:
        await db.close()


async def test_incremental_tick_skips_while_a_run_holds_the_lock(
    database_url: str, runtime: Runtime, run_lock_held: None
) -> None:
    with psycopg.connect(database_url) as conn:  # something new to load, so it tries
        conn.execute(
            "INSERT INTO analytics.user_events (anonymous_id, event_type, created_at)"
            " VALUES (%s, 'page_view', now())",
            (f"tick-{uuid.uuid4().hex[:8]}",),
        )
    runs_before = one(database_url, "SELECT count(*) FROM analytics.etl_runs")[0]
    app = make_job_app(database_url, runtime.settings)
    async with worker(app, runtime):
        job_id = await app.configure_task(INCREMENTAL_TASK).defer_async(timestamp=0)
        job = await _job(
            database_url, job_id, settled=lambda r: r["status"] not in ("todo", "doing")
        )
    assert job["status"] == "succeeded"
    assert one(database_url, "SELECT count(*) FROM analytics.etl_runs")[0] == runs_before
    outcome = one(
        database_url,
        "SELECT status, details ->> 'outcome' FROM analytics.job_runs WHERE job_id = %s",
        (job_id,),
    )
    assert outcome == ("succeeded", "skipped: another run is active")


async def test_queued_run_waits_then_is_retried_later_while_busy(
    database_url: str, runtime: Runtime, run_lock_held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_TIMEOUT_MS", "1000")  # the run task waits this long for the lock
    queued = await runs.queue_run(
        runtime.db, from_day=None, to_day=None, steps=["quality_checks"], actor_id=None,
        actor_role="service_role",
    )  # fmt: skip
    app = make_job_app(database_url, runtime.settings)
    try:
        async with worker(app, runtime):
            job = await _job(database_url, queued["job_id"], settled=lambda r: r["attempts"] >= 1)
        # EtlBusy is in the retry policy: the job is due again later, not failed …
        assert job["status"] == "todo"
        assert job["scheduled_at"] is not None
        # … the run is still queued for that retry, and the attempt is in the run log.
        assert one(
            database_url, "SELECT status FROM analytics.etl_runs WHERE id = %s", (queued["id"],)
        ) == ("queued",)
        log = one(
            database_url,
            "SELECT status, error FROM analytics.job_runs WHERE job_id = %s",
            (queued["job_id"],),
        )
        assert log[0] == "failed"
        assert log[1].startswith("EtlBusy")
    finally:
        await runs.cancel_active(runtime.db, actor_id=None, actor_role="service_role")


async def test_daily_run_waits_then_is_retried_later_while_busy(
    database_url: str, runtime: Runtime, run_lock_held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_BUSY_WAIT_MS", "200")  # how long the daily tick waits for the lock
    runs_before = one(database_url, "SELECT count(*) FROM analytics.etl_runs")[0]
    app = make_job_app(database_url, runtime.settings)
    async with worker(app, runtime):
        job_id = await app.configure_task(DAILY_TASK).defer_async(timestamp=0)
        job = await _job(database_url, job_id, settled=lambda r: r["attempts"] >= 1)
    # EtlBusy is in the retry policy: the nightly load is due again later, not lost …
    assert job["status"] == "todo"
    assert job["scheduled_at"] is not None
    # … it recorded no ETL run of its own, and the attempt is in the run log.
    assert one(database_url, "SELECT count(*) FROM analytics.etl_runs")[0] == runs_before
    log = one(
        database_url, "SELECT status, error FROM analytics.job_runs WHERE job_id = %s", (job_id,)
    )
    assert log[0] == "failed"
    assert log[1].startswith("EtlBusy")
    async with runtime.db.transaction() as conn:  # the retry must not run in later tests
        await conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (job_id,))
