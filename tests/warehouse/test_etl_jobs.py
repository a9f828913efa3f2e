"""The ETL's schedules and retry policy as procrastinate sees them."""

from __future__ import annotations

from mysetlist.core.config import load_settings
from mysetlist.jobs import make_job_app
from mysetlist.warehouse import pipeline


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
    assert periodic["etl-daily"] == (
        "30 1 * * *",
        "mysetlist.warehouse.etl_daily",
        "etl",
        "etl-daily",
    )
    assert periodic["etl-incremental"] == (
        "*/5 * * * *", "mysetlist.warehouse.etl_incremental", "etl", "etl-incremental",
    )  # fmt: skip
    run = app.tasks["mysetlist.warehouse.etl_run"]
    daily = app.tasks["mysetlist.warehouse.etl_daily"]
    for task in (run, daily):
        # ETL_CONFIG maxRetries 3: four attempts, exponential backoff, transient errors only.
        assert task.retry_strategy is not None
        assert task.retry_strategy.max_attempts == 4
        assert task.retry_strategy.exponential_wait > 0
        assert task.retry_strategy.retry_exceptions == {pipeline.EtlTransient, pipeline.EtlBusy}
