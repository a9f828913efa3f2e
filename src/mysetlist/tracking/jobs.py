"""Periodic tasks of the tracking capability (procrastinate), registered by
`core.job_queue.periodic_task`: the hourly rollup every 20 seconds (so the current hour is
at most ~25 s behind) and partition upkeep hourly. At most one of each runs (the task
lock: a tick that finds it taken does nothing, the next tick comes soon)."""

from __future__ import annotations

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import periodic_task
from mysetlist.core.run_log import RunRecord
from mysetlist.core.runtime import Runtime
from mysetlist.tracking import maintenance
from mysetlist.tracking.config import load_tracking_settings

QUEUE = "tracking"


def register(app: procrastinate.App, settings: Settings) -> None:
    tracking = load_tracking_settings()

    @periodic_task(app, name=maintenance.ROLLUP, queue=QUEUE, cron="* * * * * */20")
    async def hourly_rollup(runtime: Runtime, run: RunRecord) -> None:
        await maintenance.fill_hourly_rollup(runtime.db, tracking, run)

    @periodic_task(app, name=maintenance.UPKEEP, queue=QUEUE, cron="7 * * * *")
    async def partition_upkeep(runtime: Runtime, run: RunRecord) -> None:
        await maintenance.upkeep_partitions(runtime.db, tracking, run)
