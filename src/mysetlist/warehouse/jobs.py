"""ETL orchestration on procrastinate.

- `etl_daily`: periodic on ETL_SCHEDULE_CRON (default `0 2 * * *`; procrastinate computes
  cron times from epoch timestamps, i.e. in UTC), loads from the watermark to yesterday,
  refreshes the views, checks quality and runs maintenance. If another run is active it
  is retried later (exponential backoff), as are transient failures; max attempts
  ETL_MAX_RETRIES + 1.
- `etl_incremental`: periodic on ETL_INCREMENTAL_CRON (default every 5 minutes), reloads
  the days that received events since the watermark (today's partial day). Skipped when
  another run is active — the next tick catches up. On a warehouse no daily run has
  loaded yet (a fresh install) it runs the initial daily load instead.
- `etl_run`: executes a run queued through the API (`run_id`).

At most one run executes at a time: queueing locks keep one pending job per kind, and the
pipeline's advisory lock plus the `etl_runs` unique index on active rows do the rest (a
procrastinate `lock` is not used, so a killed worker cannot wedge the queue).
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.runtime import current
from mysetlist.warehouse import pipeline
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.runs import QUEUE, RUN_TASK

log = logging.getLogger(__name__)


def _database_url() -> str:
    return current().database_url


def _retry(config: EtlConfig) -> procrastinate.RetryStrategy:
    return procrastinate.RetryStrategy(
        max_attempts=config.max_retries + 1,
        exponential_wait=30,
        retry_exceptions={pipeline.EtlTransient, pipeline.EtlBusy},
    )


def register(app: procrastinate.App, settings: Settings) -> None:
    """The daily and incremental schedules and the API's run task."""
    config = EtlConfig.from_settings(settings)
    retry = _retry(config)
    register_run_task(app, settings)

    @app.periodic(cron=settings.etl_schedule_cron, periodic_id="etl-daily")
    @app.task(
        name="mysetlist.warehouse.etl_daily",
        queue=QUEUE,
        queueing_lock="etl-daily",
        retry=retry,
        pass_context=True,
    )
    async def etl_daily(context: Any, timestamp: int) -> None:
        result = await pipeline.execute(
            _database_url(),
            EtlConfig.from_settings(current().settings),
            request=pipeline.RunRequest(trigger="schedule", mode="daily"),
            wait_for_lock_s=60,
        )
        if result is not None:
            log.info("daily ETL run %s: %s", result.run_id, result.status)

    @app.periodic(cron=config.incremental_cron, periodic_id="etl-incremental")
    @app.task(
        name="mysetlist.warehouse.etl_incremental", queue=QUEUE, queueing_lock="etl-incremental"
    )
    async def etl_incremental(timestamp: int) -> None:
        try:
            await pipeline.run_scheduled_incremental(
                _database_url(), EtlConfig.from_settings(current().settings)
            )
        except pipeline.EtlBusy:
            log.info("incremental ETL skipped: another run is active")


def register_run_task(app: procrastinate.App, settings: Settings) -> None:
    """Only the task that executes API-queued runs (a worker without the schedules)."""
    config = EtlConfig.from_settings(settings)

    @app.task(name=RUN_TASK, queue=QUEUE, retry=_retry(config), pass_context=True)
    async def etl_run(context: Any, run_id: int) -> None:
        result = await pipeline.execute(
            _database_url(),
            EtlConfig.from_settings(current().settings),
            run_id=run_id,
            wait_for_lock_s=config.timeout_ms / 1000,
        )
        if result is not None:
            log.info("ETL run %s: %s", result.run_id, result.status)
