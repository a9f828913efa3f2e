"""`core.job_queue.periodic_task`: a registered body runs in a worker inside the run log,
with the worker's runtime from the job context; a tick that finds the task lock taken, or
whose gate says there is nothing to do, does nothing and logs nothing; `lock=False` runs
beside a holder of the lock."""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate
import psycopg
import pytest

from mysetlist.core.job_queue import (
    advisory_unlock,
    job_app,
    periodic_task,
    try_advisory_lock,
    worker_context,
)
from mysetlist.core.run_log import RunRecord
from mysetlist.core.runtime import Runtime

pytestmark = pytest.mark.db
QUEUE = "test"


async def _runs(runtime: Runtime, task: str) -> list[dict[str, object]]:
    return await runtime.db.fetch_all(
        "SELECT status, rows, job_id, trigger FROM analytics.job_runs WHERE task = %s ORDER BY id",
        (task,),
    )


async def _tick(app: procrastinate.App, name: str, *, context: dict[str, Any]) -> int:
    """Defer one tick of `name` and run a worker until the queue is empty."""
    async with app.open_async():
        job_id: int = await app.configure_task(name).defer_async(timestamp=1)
        await app.run_worker_async(
            queues=[QUEUE],
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
            additional_context=context,
        )
    return job_id


async def _job_status(runtime: Runtime, job_id: int) -> str:
    row = await runtime.db.fetch_one(
        "SELECT status::text AS status FROM procrastinate_jobs WHERE id = %s", (job_id,)
    )
    assert row is not None
    return str(row["status"])


def _name() -> str:
    return f"test.tick_{uuid.uuid4().hex[:8]}"


async def test_a_periodic_body_runs_once_per_tick_in_the_run_log(
    database_url: str, runtime: Runtime
) -> None:
    name = _name()
    seen: list[Runtime] = []
    app = job_app(database_url)

    @periodic_task(app, name=name, queue=QUEUE, cron="0 0 1 1 *")
    async def body(rt: Runtime, run: RunRecord) -> None:
        seen.append(rt)
        run.rows = 7

    assert app.tasks[name].queueing_lock == name
    job_id = await _tick(app, name, context=worker_context(runtime))
    assert seen == [runtime]  # the worker's runtime, from the job context
    assert await _runs(runtime, name) == [
        {"status": "succeeded", "rows": 7, "job_id": job_id, "trigger": "schedule"}
    ]

    # Another run holds the task lock: the tick does nothing and leaves no run row. The
    # holder's session must be its own (direct, not through a transaction pooler).
    holding = runtime.direct_url
    async with await psycopg.AsyncConnection.connect(holding, autocommit=True) as holder:
        assert await try_advisory_lock(holder, name)
        skipped = await _tick(app, name, context=worker_context(runtime))
        await advisory_unlock(holder, name)
    assert len(seen) == 1
    assert len(await _runs(runtime, name)) == 1
    assert await _job_status(runtime, skipped) == "succeeded"


async def test_without_the_task_lock_a_tick_runs_beside_its_holder(
    database_url: str, runtime: Runtime
) -> None:
    name = _name()
    app = job_app(database_url)

    @periodic_task(app, name=name, queue=QUEUE, cron="0 0 1 1 *", lock=False, trigger="queue")
    async def body(rt: Runtime, run: RunRecord) -> None:
        run.rows = 1

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as holder:
        assert await try_advisory_lock(holder, name)
        job_id = await _tick(app, name, context=worker_context(runtime))
        await advisory_unlock(holder, name)
    assert await _runs(runtime, name) == [
        {"status": "succeeded", "rows": 1, "job_id": job_id, "trigger": "queue"}
    ]


async def test_a_closed_gate_runs_nothing_and_logs_no_run(
    database_url: str, runtime: Runtime
) -> None:
    name = _name()
    app = job_app(database_url)
    gate_open = False
    calls: list[int] = []

    async def due(rt: Runtime) -> bool:
        assert rt is runtime
        return gate_open

    @periodic_task(app, name=name, queue=QUEUE, cron="0 0 1 1 *", gate=due)
    async def body(rt: Runtime, run: RunRecord) -> None:
        calls.append(1)

    closed = await _tick(app, name, context=worker_context(runtime))
    assert calls == []
    assert await _runs(runtime, name) == []
    assert await _job_status(runtime, closed) == "succeeded"
    gate_open = True
    opened = await _tick(app, name, context=worker_context(runtime))
    assert calls == [1]
    assert [r["job_id"] for r in await _runs(runtime, name)] == [opened]


async def test_a_worker_started_without_a_runtime_fails_the_job_clearly(
    database_url: str, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    name = _name()
    app = job_app(database_url)

    @periodic_task(app, name=name, queue=QUEUE, cron="0 0 1 1 *")
    async def body(rt: Runtime, run: RunRecord) -> None:
        raise AssertionError("must not run")

    job_id = await _tick(app, name, context={})
    assert await _job_status(runtime, job_id) == "failed"
    assert "started without a runtime" in caplog.text
    assert await _runs(runtime, name) == []
