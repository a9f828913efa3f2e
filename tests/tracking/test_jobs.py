"""The tracking tasks are registered with procrastinate (periodic) and run through a worker."""

from __future__ import annotations

import psycopg
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.db import session_url
from mysetlist.core.job_queue import try_advisory_lock, worker_context
from mysetlist.core.runtime import Runtime
from mysetlist.jobs import make_job_app
from mysetlist.tracking.maintenance import ROLLUP, UPKEEP

pytestmark = pytest.mark.db


async def _runs(runtime: Runtime, name: str) -> int:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.job_runs WHERE task = %s AND status = 'succeeded'",
        (name,),
    )
    assert row is not None
    return int(row["n"])


async def _succeeded_jobs(runtime: Runtime, name: str) -> int:
    """Jobs of the task that procrastinate finished, ticks its periodic deferrer queued too."""
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM procrastinate_jobs"
        " WHERE task_name = %s AND status = 'succeeded'",
        (name,),
    )
    assert row is not None
    return int(row["n"])


async def _run_of(runtime: Runtime, name: str, job_id: int) -> list[dict[str, object]]:
    return await runtime.db.fetch_all(
        "SELECT status FROM analytics.job_runs WHERE task = %s AND job_id = %s", (name, job_id)
    )


async def _drop_waiting_ticks(runtime: Runtime) -> None:
    """Workers of earlier tests run the periodic deferrer too: a tick they queued holds the
    task's queueing lock and would refuse our deferral (AlreadyEnqueued)."""
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "DELETE FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = ANY(%s)",
            ([ROLLUP, UPKEEP],),
        )


async def test_tracking_tasks_are_periodic_and_run_in_a_worker(
    database_url: str, settings: Settings, runtime: Runtime
) -> None:
    app = make_job_app(database_url, settings)
    assert {"tracking.hourly_rollup", "tracking.partition_upkeep"} <= set(app.tasks)
    periodic = {p.periodic_id: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert periodic["tracking.hourly_rollup"] == "* * * * * */20"
    assert periodic["tracking.partition_upkeep"] == "7 * * * *"
    before = (await _runs(runtime, ROLLUP), await _runs(runtime, UPKEEP))
    await _drop_waiting_ticks(runtime)
    async with app.open_async():
        rollup = await app.configure_task(ROLLUP).defer_async(timestamp=0)
        upkeep = await app.configure_task(UPKEEP).defer_async(timestamp=0)
        await app.run_worker_async(
            wait=False, install_signal_handlers=False, concurrency=1,
            queues=["tracking"], listen_notify=False,
            additional_context=worker_context(runtime),
        )  # fmt: skip
    assert await _run_of(runtime, ROLLUP, rollup) == [{"status": "succeeded"}]
    assert await _run_of(runtime, UPKEEP, upkeep) == [{"status": "succeeded"}]
    # The worker's periodic deferrer may have queued (and run) rollup ticks of its own; the
    # module's database holds no other worker's: one run logged per job that ran, no more.
    after = (await _runs(runtime, ROLLUP), await _runs(runtime, UPKEEP))
    assert after[0] == await _succeeded_jobs(runtime, ROLLUP) >= before[0] + 1
    assert after[1] == await _succeeded_jobs(runtime, UPKEEP) == before[1] + 1


async def test_a_running_rollup_makes_the_next_tick_do_nothing_and_a_dead_holder_frees_it(
    database_url: str, settings: Settings, runtime: Runtime
) -> None:
    app = make_job_app(database_url, settings)
    # No procrastinate `lock`: a killed worker's `doing` job would hold it until stalled-job
    # recovery; the advisory lock dies with the worker's database session instead.
    assert app.tasks[ROLLUP].lock is None
    holder = await psycopg.AsyncConnection.connect(session_url(database_url), autocommit=True)
    try:
        assert await try_advisory_lock(holder, ROLLUP)  # "another worker is rolling up"
        before = await _runs(runtime, ROLLUP)
        await _drop_waiting_ticks(runtime)
        async with app.open_async():
            job_id = await app.configure_task(ROLLUP).defer_async(timestamp=1)
            await app.run_worker_async(
                wait=False, install_signal_handlers=False, concurrency=1,
                queues=["tracking"], listen_notify=False,
                additional_context=worker_context(runtime),
            )  # fmt: skip
        assert await _runs(runtime, ROLLUP) == before  # skipped, not run alongside
        job = await runtime.db.fetch_one(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
        )
        assert job == {"status": "succeeded"}
        # The holder dies (its session is killed, as when its process is): the lock is free.
        await runtime.db.fetch_one("SELECT pg_terminate_backend(%s)", (holder.info.backend_pid,))
    finally:
        await holder.close()
    await _drop_waiting_ticks(runtime)
    async with app.open_async():
        job_id = await app.configure_task(ROLLUP).defer_async(timestamp=2)
        await app.run_worker_async(
            wait=False, install_signal_handlers=False, concurrency=1,
            queues=["tracking"], listen_notify=False,
            additional_context=worker_context(runtime),
        )  # fmt: skip
    # The worker's periodic deferrer may add a tick of its own: look for our job's run.
    runs = await runtime.db.fetch_all(
        "SELECT status FROM analytics.job_runs WHERE task = %s AND job_id = %s", (ROLLUP, job_id)
    )
    assert runs == [{"status": "succeeded"}]
