"""ETL orchestration on procrastinate (names and queue by the convention in
`core/job_queue.py`: `warehouse.<task>` on queue `warehouse`).

- `warehouse.etl_daily`: periodic on ETL_SCHEDULE_CRON (default `0 2 * * *`; procrastinate
  computes cron times from epoch timestamps, i.e. in UTC), loads from the watermark to
  yesterday, refreshes the views, checks quality and runs maintenance. If another run is
  active it is retried later (exponential backoff), as are transient failures; max
  attempts ETL_MAX_RETRIES + 1.
- `warehouse.etl_incremental`: periodic on ETL_INCREMENTAL_CRON (default every 5 minutes),
  reloads the days that received events since the watermark (today's partial day).
  Skipped when another run is active — the next tick catches up. On a warehouse no daily
  run has loaded yet (a fresh install) it runs the initial daily load instead.
- `warehouse.etl_run`: executes a run queued through the API (`run_id`).

Every execution leaves a row in the shared run log (`core.run_log`, with the procrastinate
job id and the `etl_runs` id in its details); `etl_runs` keeps the ETL's own record.

At most one run executes at a time: queueing locks keep one pending job per task, and the
pipeline's run lock (a session advisory lock) plus the `etl_runs` unique index on active
rows do the rest (no procrastinate `lock`, so a killed worker cannot wedge the queue).
"""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_runtime, periodic_task
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.runtime import Runtime
from mysetlist.warehouse import pipeline
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.runs import QUEUE, RUN_TASK

log = logging.getLogger(__name__)

DAILY_TASK = "warehouse.etl_daily"
INCREMENTAL_TASK = "warehouse.etl_incremental"


def _retry(config: EtlConfig) -> procrastinate.RetryStrategy:
    return procrastinate.RetryStrategy(
        max_attempts=config.max_retries + 1,
        exponential_wait=30,
        retry_exceptions={pipeline.EtlTransient, pipeline.EtlBusy},
    )


def _report(run: RunRecord, result: pipeline.RunResult | None, *, if_none: str = "") -> None:
    """What the run log keeps of an ETL run (the rest is in its `etl_runs` row); `if_none`
    says why there was no run."""
    if result is None:
        run.details = {"etl_run_id": None, "outcome": if_none}
        return
    run.rows = int(sum(t.get("rows", 0) for t in result.step_timings.values()))
    run.details = {
        "etl_run_id": result.run_id,
        "status": result.status,
        "days": result.days,
        "checks_status": result.checks_status,
    }
    log.info("ETL run %s: %s", result.run_id, result.status)


def register(app: procrastinate.App, settings: Settings) -> None:
    """The daily and incremental schedules and the API's run task. Neither schedule takes
    the task lock: the pipeline's run lock excludes every other run (the daily tick waits
    for it and retries, the incremental tick skips). The pipeline gets the direct URL: its
    run lock is a session advisory lock and its work connections carry session settings
    and a session temp table, which a transaction pooler would not keep."""
    config = EtlConfig.from_settings(settings)
    register_run_task(app, settings)

    @periodic_task(app, name=DAILY_TASK, queue=QUEUE, cron=settings.etl_schedule_cron,
                   lock=False, retry=_retry(config))  # fmt: skip
    async def etl_daily(runtime: Runtime, run: RunRecord) -> None:
        config = EtlConfig.from_settings(runtime.settings)
        result = await pipeline.execute(
            runtime.direct_url,
            config,
            request=pipeline.RunRequest(trigger="schedule", mode="daily"),
            wait_for_lock_s=config.busy_wait_ms / 1000,
        )
        _report(run, result)

    @periodic_task(app, name=INCREMENTAL_TASK, queue=QUEUE, cron=config.incremental_cron,
                   lock=False)  # fmt: skip
    async def etl_incremental(runtime: Runtime, run: RunRecord) -> None:
        try:
            result = await pipeline.run_scheduled_incremental(
                runtime.direct_url, EtlConfig.from_settings(runtime.settings)
            )
        except pipeline.EtlBusy:
            log.info("incremental ETL skipped: another run is active")
            run.details = {"etl_run_id": None, "outcome": "skipped: another run is active"}
            return
        _report(run, result, if_none="no new events")


def register_run_task(app: procrastinate.App, settings: Settings) -> None:
    """Only the task that executes API-queued runs (a worker without the schedules)."""
    config = EtlConfig.from_settings(settings)

    @app.task(name=RUN_TASK, queue=QUEUE, retry=_retry(config), pass_context=True)
    async def etl_run(context: procrastinate.JobContext, run_id: int) -> None:
        runtime = job_runtime(context)
        async with job_run(runtime.db, RUN_TASK, trigger="api", job_id=context.job.id) as run:
            result = await pipeline.execute(
                runtime.direct_url,
                EtlConfig.from_settings(runtime.settings),
                run_id=run_id,
                wait_for_lock_s=config.timeout_ms / 1000,
            )
            _report(run, result, if_none=f"ETL run {run_id} was cancelled before it started")
