"""The privacy tasks on a real procrastinate worker: the erase job gets the worker's
runtime from its job context and erases; a resume tick that finds the previous sweep still
going does nothing and logs no run (it used to log a succeeded run of nothing)."""

from __future__ import annotations

import uuid

import procrastinate
import psycopg
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.db import session_url
from mysetlist.core.job_queue import advisory_unlock, try_advisory_lock, worker_context
from mysetlist.core.runtime import Runtime
from mysetlist.jobs import make_job_app
from mysetlist.privacy.erasure import ERASE_TASK, request_erasure
from mysetlist.privacy.jobs import RESUME_TASK
from tests.privacy.seeding import new_user, seed_store

pytestmark = pytest.mark.db


async def _work(app: procrastinate.App, runtime: Runtime, queue: str) -> None:
    """Run a worker on `queue` (this test's own) until it is empty."""
    await app.run_worker_async(
        queues=[queue],
        wait=False,
        install_signal_handlers=False,
        listen_notify=False,
        additional_context=worker_context(runtime),
    )


async def _tick(app: procrastinate.App, queue: str) -> int:
    """A tick on this test's queue, with a queueing lock of its own (the worker's periodic
    deferrer may have queued a real tick, which holds the task's)."""
    deferrer = app.configure_task(RESUME_TASK, queue=queue, queueing_lock=queue)
    job_id: int = await deferrer.defer_async(timestamp=0)
    return job_id


async def _run_of(runtime: Runtime, job_id: int) -> dict[str, object] | None:
    return await runtime.db.fetch_one(
        "SELECT task, status, details FROM analytics.job_runs WHERE job_id = %s", (job_id,)
    )


async def test_the_erase_task_erases_with_the_workers_runtime(
    database_url: str, settings: Settings, runtime: Runtime
) -> None:
    user = new_user(runtime.cipher)
    await seed_store(runtime, user)
    request_id, created = await request_erasure(
        runtime.db, user.user_id, requested_by=None, requested_by_role="cli", source="cli",
        revocations=runtime.revocations,
    )  # fmt: skip
    assert created
    queue = f"privacy-test-{uuid.uuid4().hex[:8]}"  # not the shared queue: only this job
    app = make_job_app(database_url, settings)
    async with app.open_async():
        job_id = await app.configure_task(ERASE_TASK, queue=queue).defer_async(
            request_id=request_id
        )
        await _work(app, runtime, queue)
    run = await _run_of(runtime, job_id)
    assert run == {
        "task": ERASE_TASK,
        "status": "succeeded",
        "details": {"erasure_request": request_id, "status": "done"},
    }
    request = await runtime.db.fetch_one(
        "SELECT status, user_id FROM privacy.erasure_requests WHERE id = %s", (request_id,)
    )
    assert request == {"status": "done", "user_id": None}


async def test_a_resume_tick_that_finds_the_sweep_running_logs_no_run(
    database_url: str, settings: Settings, runtime: Runtime
) -> None:
    queue = f"privacy-test-{uuid.uuid4().hex[:8]}"
    app = make_job_app(database_url, settings)
    async with await psycopg.AsyncConnection.connect(
        session_url(database_url), autocommit=True
    ) as holder:
        assert await try_advisory_lock(holder, RESUME_TASK)  # "the previous sweep is going"
        async with app.open_async():
            skipped = await _tick(app, queue)
            await _work(app, runtime, queue)
        await advisory_unlock(holder, RESUME_TASK)
    job = await runtime.db.fetch_one(
        "SELECT status::text AS status FROM procrastinate_jobs WHERE id = %s", (skipped,)
    )
    assert job == {"status": "succeeded"}
    assert await _run_of(runtime, skipped) is None
    # Control: with the lock free, a tick does log its run.
    async with app.open_async():
        ran = await _tick(app, queue)
        await _work(app, runtime, queue)
    run = await _run_of(runtime, ran)
    assert run is not None
    assert (run["task"], run["status"]) == (RESUME_TASK, "succeeded")
