"""The job queue (procrastinate): its one App constructor, the conventions every task
follows, task-level mutual exclusion, and deferring a job inside the caller's transaction.

Conventions (every capability's `jobs.py` follows them; tests/core/test_task_conventions.py
checks them on the assembled app):

- Task name `<capability>.<task>` (`tracking.hourly_rollup`, `warehouse.etl_daily`); the
  run log (`core.run_log`) records runs under the same name, and a watermark an activity
  keeps is named after it too.
- Queue = the capability's name (`tracking`, `warehouse`). A worker listens to every queue
  unless told otherwise; queues exist to run or drain one capability's work separately.
- Periodic tasks are registered with `periodic_task` (one shape: task lock, gate, run
  log): `queueing_lock` = the task name (at most one waiting job per task; a missed tick
  is not queued twice) and `periodic_id` = the task name.
- The runtime (database pool, Redis, cipher, settings) reaches a task through
  procrastinate's job context: the worker passes `worker_context(runtime)` as
  `additional_context`, a task (`pass_context=True`) reads it with `job_runtime(context)`.
- Overlap (at most one *running* job of a task): a PostgreSQL session advisory lock
  (`hold_task_lock`, `try_advisory_lock`), never procrastinate's `lock=`. A procrastinate
  lock is a column of the job row: when a worker is killed (`kill -9`, OOM, a lost host)
  its job stays `doing` and keeps the lock, and every later job with that lock waits until
  someone runs stalled-job recovery (`job_manager.get_stalled_jobs` + `retry_job`, which
  procrastinate leaves to the application) — a dead worker wedges the queue. An advisory
  lock belongs to the database session, so the server releases it the moment the dead
  worker's connection drops. A task that finds its lock taken returns at once (the next
  tick comes soon) or raises a retryable error, as the task decides.

A worker outlives its database going away (`run_worker_until_stopped`): procrastinate
stops a worker for good when one of its side tasks fails (the LISTEN connection cannot
reconnect while PostgreSQL restarts, a heartbeat meets a dead connection), and the worker
process then idled or exited with code 0 and nothing ran jobs any more. It is started
again in the same process, after a backoff, until a signal (or the caller) stops it.

`defer_in_transaction` writes a job in the caller's transaction (commits or rolls back
with the caller's rows), through procrastinate's `configure(connection=...)`.
procrastinate's own schema is installed and version-checked by `core.migrate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.app import WorkerOptions
from psycopg import AsyncConnection

from mysetlist.core.db import Database, fetch_one_in, lock_key, prepare_threshold, read_sql
from mysetlist.core.runtime import Runtime

if TYPE_CHECKING:
    from mysetlist.core.run_log import RunRecord

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.core"


def job_app(database_url: str) -> procrastinate.App:
    """A procrastinate App on `database_url`, without tasks (`mysetlist.jobs.make_job_app`
    adds every capability's). Enough to defer by task name, cancel or inspect jobs. A worker
    LISTENs for new jobs: give it the direct URL (`Runtime.direct_url`), not the pooler's."""
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=database_url, kwargs={"prepare_threshold": prepare_threshold(database_url)}
        )
    )


async def try_advisory_lock(conn: AsyncConnection[Any], name: str) -> bool:
    """Take the session advisory lock `name` on `conn` if free; True when taken.

    Held until `advisory_unlock` or until the session ends (the server frees it when the
    holder's connection drops, however its process died)."""
    row = await fetch_one_in(conn, read_sql(_PACKAGE, "advisory_try_lock.sql"), (lock_key(name),))
    return bool(row and row["taken"])


async def advisory_unlock(conn: AsyncConnection[Any], name: str) -> None:
    await conn.execute(read_sql(_PACKAGE, "advisory_unlock.sql"), (lock_key(name),))


@contextlib.asynccontextmanager
async def hold_task_lock(db: Database, name: str) -> AsyncIterator[bool]:
    """Hold the advisory lock `name` for the body if free; yields whether it was taken.

    The lock lives on a session connection kept aside for the body (not used for the
    work; direct, not through a transaction pooler, which would hand the session to
    another client). If the unlock fails the connection is closed, which frees the lock,
    rather than going back to the pool still holding it."""
    async with db.session_connection() as conn:
        if not await try_advisory_lock(conn, name):
            yield False
            return
        try:
            yield True
        finally:
            try:
                await advisory_unlock(conn, name)
            except BaseException:
                await conn.close()
                raise


RUNTIME_KEY = "runtime"


def worker_context(runtime: Runtime) -> dict[str, Any]:
    """What a worker hands every task (`run_worker_async(additional_context=...)`): the
    runtime its process opened, which a task reads with `job_runtime(context)`."""
    return {RUNTIME_KEY: runtime}


def job_runtime(context: procrastinate.JobContext) -> Runtime:
    """The runtime of the worker running this job (tasks take `pass_context=True`)."""
    runtime = context.additional_context.get(RUNTIME_KEY)
    if not isinstance(runtime, Runtime):
        raise RuntimeError(
            "the worker was started without a runtime:"
            " run_worker_async(additional_context=worker_context(runtime))"
        )
    return runtime


PeriodicBody = Callable[[Runtime, "RunRecord"], Awaitable[None]]
# Whether this tick has work (checked after the task lock, before a run is logged).
Gate = Callable[[Runtime], Awaitable[bool]]


def periodic_task(
    app: procrastinate.App,
    *,
    name: str,
    queue: str,
    cron: str,
    lock: bool = True,
    gate: Gate | None = None,
    trigger: str = "schedule",
    retry: procrastinate.RetryStrategy | None = None,
) -> Callable[[PeriodicBody], PeriodicBody]:
    """Register `body(runtime, run)` as a periodic task by the conventions above: task name,
    periodic id and queueing lock = `name`, every run in the run log under `trigger`.

    - `lock` (default): at most one running, by the advisory task lock; a tick that finds
      it taken does nothing and logs no run. `lock=False` for work that excludes itself
      (row claims with SKIP LOCKED, a lock of its own that it waits on or retries).
    - `gate(runtime)`: False when there is nothing to do this tick; no run is logged.
    - `retry`: procrastinate's retry strategy for the tick's job.
    """
    from mysetlist.core.run_log import job_run

    def register(body: PeriodicBody) -> PeriodicBody:
        async def run_once(runtime: Runtime, job_id: int | None) -> None:
            if gate is not None and not await gate(runtime):
                return
            async with job_run(runtime.db, name, trigger=trigger, job_id=job_id) as run:
                await body(runtime, run)

        @app.periodic(cron=cron, periodic_id=name)
        @app.task(
            name=name,
            queue=queue,
            queueing_lock=name,
            retry=retry if retry is not None else False,
            pass_context=True,
        )
        async def task(context: procrastinate.JobContext, timestamp: int) -> None:
            runtime = job_runtime(context)
            if not lock:
                await run_once(runtime, context.job.id)
                return
            async with hold_task_lock(runtime.db, name) as held:
                if not held:
                    log.info("%s skipped: the previous run is still going", name)
                    return
                await run_once(runtime, context.job.id)

        return body

    return register


# The App that defers by task name on a caller's connection. Its connector is never opened:
# with `connection=`, procrastinate (>= 3.10) runs the job INSERT on that connection
# (`execute_query_all_async_with_connection`) and never asks for a pool. One per process,
# so a defer costs only its INSERT.
_deferrer = procrastinate.App(connector=procrastinate.PsycopgConnector())


async def defer_in_transaction(
    conn: AsyncConnection[Any],
    task_name: str,
    *,
    queue: str,
    queueing_lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Defer `task_name` with `task_kwargs` on `conn`; returns the job id.

    Call it inside `conn.transaction()`: the job becomes visible to workers only when that
    transaction commits, so a job is never lost (the caller commits, then dies before a
    separate defer) nor run for rows that were rolled back. procrastinate's supported
    `configure(connection=...)` writes it (its SQL, queueing lock and JSON handling). A
    queueing-lock conflict raises procrastinate's `AlreadyEnqueued` and, like any failed
    statement, aborts the transaction (use a savepoint to go on).
    """
    if conn.info.transaction_status == conn.info.transaction_status.IDLE:
        raise RuntimeError("defer_in_transaction needs an open transaction on conn")
    deferrer = _deferrer.configure_task(
        task_name, queue=queue, queueing_lock=queueing_lock, connection=conn
    )
    job_id: int = await deferrer.defer_async(**task_kwargs)
    return job_id


# A worker run that lasted this long was not a failing start: the backoff starts over.
WORKER_HEALTHY_SECONDS = 30.0
WORKER_BACKOFF_FIRST_SECONDS = 1.0
WORKER_BACKOFF_MAX_SECONDS = 30.0


async def run_worker_until_stopped(
    app: procrastinate.App, options: WorkerOptions, *, handle_signals: bool
) -> None:
    """`app.run_worker_async(**options)`, started again whenever it ends or fails without
    having been asked to stop (its database went away), after 1, 2, 4 … 30 s.

    `handle_signals` (a worker process of its own): the first SIGTERM/SIGINT stops it
    gracefully (no new job; the running ones get the worker's `shutdown_graceful_timeout`),
    a second one at once. Otherwise the caller stops it by cancelling this coroutine."""
    stopping = asyncio.Event()
    worker: asyncio.Task[None] | None = None

    def on_signal() -> None:
        stopping.set()
        if worker is not None:
            # procrastinate stops gracefully on the first cancellation, at once on a second.
            worker.cancel()

    loop = asyncio.get_running_loop()
    if handle_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
    failures = 0
    try:
        while not stopping.is_set():
            began = time.monotonic()
            worker = asyncio.create_task(
                app.run_worker_async(**(options | {"install_signal_handlers": False})),
                name="procrastinate-worker",
            )
            problem: BaseException | None = None
            try:
                await worker
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller stops us
                if stopping.is_set():
                    return
            except Exception as exc:  # the database went away (ConnectorException …)
                problem = exc
            if stopping.is_set():
                return
            failures = 0 if time.monotonic() - began > WORKER_HEALTHY_SECONDS else failures + 1
            delay = min(WORKER_BACKOFF_MAX_SECONDS,
                        WORKER_BACKOFF_FIRST_SECONDS * 2 ** max(0, failures - 1))  # fmt: skip
            log.warning(
                "job worker stopped without being asked (%s); starting it again in %.0f s",
                repr(problem) if problem else "a side task failed: database connection lost?",
                delay, extra={"fields": {"restart_in_seconds": delay}},
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):  # the backoff, cut short by a signal
                await asyncio.wait_for(stopping.wait(), delay)
    finally:
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
