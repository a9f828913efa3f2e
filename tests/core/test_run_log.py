"""Every background activity leaves one row in analytics.job_runs (core/run_log.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mysetlist.core.run_log import job_run, prune_job_runs
from mysetlist.core.runtime import Runtime

pytestmark = pytest.mark.db


async def _run_row(runtime: Runtime, run_id: int) -> dict[str, object]:
    row = await runtime.db.fetch_one("SELECT * FROM analytics.job_runs WHERE id = %s", (run_id,))
    assert row is not None
    return row


async def test_running_row_is_visible_while_the_body_runs_then_succeeded(
    runtime: Runtime,
) -> None:
    task = f"tests.probe_{uuid.uuid4().hex[:8]}"
    async with job_run(runtime.db, task, trigger="cli", job_id=42) as run:
        # read on another pooled connection: the row was committed before the body
        during = await _run_row(runtime, run.run_id)
        assert (during["task"], during["status"], during["trigger"]) == (task, "running", "cli")
        assert during["job_id"] == 42
        assert during["finished_at"] is None
        run.rows = 7
        run.details = {"since": "2026-01-01", "n": 3}
    after = await _run_row(runtime, run.run_id)
    assert after["status"] == "succeeded"
    assert after["rows"] == 7
    assert after["details"] == {"since": "2026-01-01", "n": 3}
    assert after["error"] is None
    assert after["finished_at"] is not None
    duration = after["duration_ms"]
    assert isinstance(duration, float)
    assert duration >= 0


async def test_a_failing_body_leaves_a_failed_row_with_its_error(runtime: Runtime) -> None:
    run_ids: list[int] = []

    async def failing_run() -> None:
        async with job_run(runtime.db, "tests.failing") as run:
            run_ids.append(run.run_id)
            run.rows = 2
            raise ValueError("bad day")

    with pytest.raises(ValueError, match="bad day"):
        await failing_run()
    row = await _run_row(runtime, run_ids[0])
    assert row["status"] == "failed"
    assert row["error"] == "ValueError: bad day"
    assert row["rows"] == 2
    assert row["trigger"] == "schedule"
    assert row["duration_ms"] is not None


async def test_a_cancelled_body_leaves_a_cancelled_row(runtime: Runtime) -> None:
    started = asyncio.Event()
    run_ids: list[int] = []

    async def body() -> None:
        async with job_run(runtime.db, "tests.cancelled") as run:
            run_ids.append(run.run_id)
            started.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(body())
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await _run_row(runtime, run_ids[0])
    assert row["status"] == "cancelled"
    assert row["finished_at"] is not None


async def test_runs_older_than_the_retention_are_pruned(runtime: Runtime) -> None:
    task = f"tests.prune_{uuid.uuid4().hex[:8]}"
    async with runtime.db.transaction() as conn:
        await conn.execute(
            """INSERT INTO analytics.job_runs (task, status, started_at)
               VALUES (%(t)s, 'succeeded', now() - interval '31 days'),
                      (%(t)s, 'running', now() - interval '40 days'),
                      (%(t)s, 'succeeded', now() - interval '29 days')""",
            {"t": task},
        )
    assert await prune_job_runs(runtime.db) >= 2
    left = await runtime.db.fetch_all(
        "SELECT now() - started_at < interval '30 days' AS recent FROM analytics.job_runs"
        " WHERE task = %s",
        (task,),
    )
    assert left == [{"recent": True}]
