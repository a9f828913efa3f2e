"""The ETL's schedules and retry policy as procrastinate sees them, and its task bodies
leaving rows in the shared run log."""

from __future__ import annotations

from typing import Any

import pytest
from procrastinate.retry import RetryStrategy

from mysetlist.core.config import Settings, load_settings
from mysetlist.core.job_queue import worker_context
from mysetlist.core.runtime import open_runtime
from mysetlist.jobs import make_job_app
from mysetlist.warehouse import pipeline
from mysetlist.warehouse.jobs import DAILY_TASK, INCREMENTAL_TASK
from mysetlist.warehouse.runs import RUN_TASK


def test_schedules_queue_locks_and_retries() -> None:
    settings = load_settings(
        DATABASE_URL="postgresql://nobody@localhost/none", ETL_SCHEDULE_CRON="30 1 * * *"
    )
    app = make_job_app("postgresql://nobody@localhost/none", settings)
    periodic = {
        key[1]: (p.cron, p.task.name, p.task.queue, p.task.queueing_lock)
        for key, p in app.periodic_registry.periodic_tasks.items()
    }
    # The daily run follows ETL_SCHEDULE_CRON (procrastinate: UTC); the incremental run
    # every five minutes; one pending job of each kind at most (queueing locks).
    assert periodic["warehouse.etl_daily"] == (
        "30 1 * * *",
        "warehouse.etl_daily",
        "warehouse",
        "warehouse.etl_daily",
    )
    assert periodic["warehouse.etl_incremental"] == (
        "*/5 * * * *", "warehouse.etl_incremental", "warehouse", "warehouse.etl_incremental",
    )  # fmt: skip
    run = app.tasks["warehouse.etl_run"]
    daily = app.tasks["warehouse.etl_daily"]
    for task in (run, daily):
        # ETL_CONFIG maxRetries 3: four attempts, exponential backoff, transient errors only.
        strategy = task.retry_strategy
        assert isinstance(strategy, RetryStrategy)
        assert strategy.max_attempts == 4
        assert strategy.exponential_wait > 0
        assert strategy.retry_exceptions == {pipeline.EtlTransient, pipeline.EtlBusy}


@pytest.mark.db
async def test_etl_tasks_leave_rows_in_the_run_log(
    wh_url: str, settings: Settings, redis_url: str
) -> None:
    # A database of its own: no events, so the incremental tick has nothing to load.
    runtime = await open_runtime(settings, wh_url, redis_url)
    app = make_job_app(wh_url, settings)
    try:
        async with app.open_async():
            incremental = await app.configure_task(INCREMENTAL_TASK).defer_async(timestamp=0)
            # an API run whose row is gone: the task finds nothing to execute
            queued = await app.configure_task(RUN_TASK).defer_async(run_id=-1)
            await app.run_worker_async(
                wait=False, install_signal_handlers=False, concurrency=1,
                queues=["warehouse"], listen_notify=False,
                additional_context=worker_context(runtime),
            )  # fmt: skip
        rows: dict[int, Any] = {
            r["job_id"]: r
            for r in await runtime.db.fetch_all(
                "SELECT task, trigger, status, details, duration_ms, job_id"
                " FROM analytics.job_runs WHERE job_id = ANY(%s)",
                ([incremental, queued],),
            )
        }
    finally:
        await runtime.close()
    assert rows[incremental]["task"] == INCREMENTAL_TASK
    assert rows[incremental]["trigger"] == "schedule"
    assert rows[incremental]["status"] == "succeeded"
    assert rows[incremental]["details"] == {"etl_run_id": None, "outcome": "no new events"}
    assert rows[incremental]["duration_ms"] is not None
    assert (rows[queued]["task"], rows[queued]["trigger"]) == (RUN_TASK, "api")
    assert rows[queued]["status"] == "succeeded"
    assert rows[queued]["details"]["etl_run_id"] is None
    assert DAILY_TASK in app.tasks
