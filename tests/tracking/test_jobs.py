"""The tracking tasks are registered with procrastinate (periodic) and run through a worker."""

from __future__ import annotations

import pytest

from mysetlist.core import runtime as core_runtime
from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.jobs import make_job_app

pytestmark = pytest.mark.db


async def _runs(runtime: Runtime, name: str) -> int:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.tracking_job_runs"
        " WHERE name = %s AND status = 'succeeded'",
        (name,),
    )
    assert row is not None
    return int(row["n"])


async def test_tracking_tasks_are_periodic_and_run_in_a_worker(
    database_url: str, settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_job_app(database_url, settings)
    assert {"tracking.hourly_rollup", "tracking.partition_upkeep"} <= set(app.tasks)
    periodic = {p.periodic_id: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert periodic["tracking-hourly-rollup"] == "* * * * * */20"
    assert periodic["tracking-partition-upkeep"] == "7 * * * *"
    before = (await _runs(runtime, "hourly_rollup"), await _runs(runtime, "partition_upkeep"))
    # Tasks reach the database through the process's current runtime; earlier tests' apps
    # replaced (and closed) it, so point it back at this session's open runtime.
    monkeypatch.setattr(core_runtime, "_current", runtime)
    async with app.open_async():
        await app.configure_task("tracking.hourly_rollup").defer_async(timestamp=0)
        await app.configure_task("tracking.partition_upkeep").defer_async(timestamp=0)
        await app.run_worker_async(
            wait=False, install_signal_handlers=False, concurrency=1,
            queues=["default"], listen_notify=False,
        )  # fmt: skip
    after = (await _runs(runtime, "hourly_rollup"), await _runs(runtime, "partition_upkeep"))
    assert after[0] >= before[0] + 1
    assert after[1] == before[1] + 1
