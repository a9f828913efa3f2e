"""`core.job_queue.periodic_task`: a registered body runs in a worker inside the run log,
and a tick that finds the task lock taken does nothing and logs nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from mysetlist.core import runtime as core_runtime
from mysetlist.core.db import Database
from mysetlist.core.job_queue import advisory_unlock, job_app, periodic_task, try_advisory_lock
from mysetlist.core.run_log import RunRecord
from mysetlist.core.runtime import Runtime

pytestmark = pytest.mark.db


async def _runs(runtime: Runtime, task: str) -> list[dict[str, object]]:
    return await runtime.db.fetch_all(
        "SELECT status, rows, job_id FROM analytics.job_runs WHERE task = %s ORDER BY id", (task,)
    )


async def test_a_periodic_body_runs_once_per_tick_in_the_run_log(
    database_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_runtime, "_current", runtime)
    name = f"test.tick_{uuid.uuid4().hex[:8]}"
    calls: list[int] = []
    app = job_app(database_url)

    @periodic_task(app, name=name, queue="test", cron="0 0 1 1 *")
    async def body(db: Database, run: RunRecord) -> None:
        calls.append(1)
        run.rows = 7

    assert app.tasks[name].queueing_lock == name
    async with app.open_async():
        job_id = await app.configure_task(name).defer_async(timestamp=1)
        await app.run_worker_async(
            queues=["test"], wait=False, install_signal_handlers=False, listen_notify=False
        )
    assert calls == [1]
    assert await _runs(runtime, name) == [{"status": "succeeded", "rows": 7, "job_id": job_id}]

    # Another run holds the task lock: the tick does nothing and leaves no run row.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as holder:
        assert await try_advisory_lock(holder, name)
        async with app.open_async():
            await app.configure_task(name).defer_async(timestamp=2)
            await app.run_worker_async(
                queues=["test"], wait=False, install_signal_handlers=False, listen_notify=False
            )
        await advisory_unlock(holder, name)
    assert calls == [1]
    assert len(await _runs(runtime, name)) == 1
