"""Periodic tasks of the tracking capability (procrastinate): the hourly rollup every
20 seconds (so the current hour is at most ~25 s behind) and partition upkeep hourly.
`queueing_lock` keeps at most one waiting job per task and `lock` at most one running."""

from __future__ import annotations

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.runtime import current
from mysetlist.tracking import maintenance
from mysetlist.tracking.config import load_tracking_settings


def register(app: procrastinate.App, settings: Settings) -> None:
    tracking = load_tracking_settings()

    @app.periodic(cron="* * * * * */20", periodic_id="tracking-hourly-rollup")
    @app.task(
        name="tracking.hourly_rollup",
        queueing_lock="tracking.hourly_rollup",
        lock="tracking.hourly_rollup",
    )
    async def hourly_rollup(timestamp: int) -> None:
        await maintenance.rollup_hourly(current().db, tracking)

    @app.periodic(cron="7 * * * *", periodic_id="tracking-partition-upkeep")
    @app.task(
        name="tracking.partition_upkeep",
        queueing_lock="tracking.partition_upkeep",
        lock="tracking.partition_upkeep",
    )
    async def partition_upkeep(timestamp: int) -> None:
        await maintenance.partition_upkeep(current().db, tracking)
