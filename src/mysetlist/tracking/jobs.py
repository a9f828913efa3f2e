"""Periodic tasks of the tracking capability (procrastinate), named and queued by the
convention in `core/job_queue.py`: the hourly rollup every 20 seconds (so the current hour
is at most ~25 s behind) and partition upkeep hourly. `queueing_lock` keeps at most one
waiting job per task, an advisory task lock at most one running (a tick that finds it
taken does nothing: the next tick comes soon)."""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import hold_task_lock
from mysetlist.core.runtime import current
from mysetlist.tracking import maintenance
from mysetlist.tracking.config import load_tracking_settings

log = logging.getLogger(__name__)
QUEUE = "tracking"


def register(app: procrastinate.App, settings: Settings) -> None:
    tracking = load_tracking_settings()

    @app.periodic(cron="* * * * * */20", periodic_id=maintenance.ROLLUP)
    @app.task(
        name=maintenance.ROLLUP, queue=QUEUE, queueing_lock=maintenance.ROLLUP, pass_context=True
    )
    async def hourly_rollup(context: procrastinate.JobContext, timestamp: int) -> None:
        db = current().db
        async with hold_task_lock(db, maintenance.ROLLUP) as held:
            if not held:
                log.info("%s skipped: the previous run is still going", maintenance.ROLLUP)
                return
            await maintenance.rollup_hourly(db, tracking, job_id=context.job.id)

    @app.periodic(cron="7 * * * *", periodic_id=maintenance.UPKEEP)
    @app.task(
        name=maintenance.UPKEEP, queue=QUEUE, queueing_lock=maintenance.UPKEEP, pass_context=True
    )
    async def partition_upkeep(context: procrastinate.JobContext, timestamp: int) -> None:
        db = current().db
        async with hold_task_lock(db, maintenance.UPKEEP) as held:
            if not held:
                log.info("%s skipped: the previous run is still going", maintenance.UPKEEP)
                return
            await maintenance.partition_upkeep(db, tracking, job_id=context.job.id)
