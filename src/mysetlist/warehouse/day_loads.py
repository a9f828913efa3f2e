"""The day stage of a run: every day of the range loaded in **one transaction** — extract
into a staging table, then every day-grained table — on `parallelism` work connections
side by side, so a killed worker leaves no half-loaded day and a rerun of a day replaces
it whole.

A day whose transaction fails on a serialization failure, a deadlock or a lock wait past
ETL_LOCK_TIMEOUT_MS rolled back whole and is run again (tenacity: up to ETL_MAX_RETRIES
times, exponential backoff); the retries are counted on the step that failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, timedelta

from psycopg import AsyncClientCursor
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from mysetlist.core.db import connect
from mysetlist.warehouse.errors import RETRYABLE_IN_TRANSACTION, most_telling
from mysetlist.warehouse.run_state import Connection, RunState, StepTiming, day_bounds
from mysetlist.warehouse.sql_files import query, run_statements, statements, writes_rows

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.2  # first wait; doubles each retry
# The session rule's gap: a day's staging also reads this much of the day before, so a
# session that started before midnight is not counted again (sql/extract.sql).
SESSION_GAP = timedelta(minutes=30)


async def open_work_connections(state: RunState, database_url: str) -> list[Connection]:
    """`parallelism` connections (no more than days), tuned for the ETL, their backend pids
    recorded on the run (the cancel path calls `pg_cancel_backend` on them)."""
    work: list[Connection] = []
    n = max(1, min(state.config.parallelism, len(state.days) or 1))
    if state.incremental and state.days:
        # a day or two to load, but steps alongside the day stage, rollups and checks
        # side by side: every connection
        n = state.config.parallelism
    try:
        for _ in range(n):
            conn = await connect(
                database_url, application_name=f"mysetlist-etl run {state.run_id}", autocommit=True
            )
            work.append(conn)
            # Parameters inside CREATE TEMP TABLE … AS need client-side binding.
            conn.cursor_factory = AsyncClientCursor
            await conn.execute(
                query("work_session"),
                {
                    "timeout_ms": str(state.config.timeout_ms),
                    "lock_timeout_ms": str(state.config.lock_timeout_ms),
                    "work_mem": state.config.work_mem,
                },
            )
            await conn.execute(query("day_scope_create"))
        if state.incremental and state.days:
            await _fill_day_scope(state, work)
        pids = [conn.info.backend_pid for conn in work]
        await state.control.execute(
            query("run_set_backends"), {"pids": pids, "run_id": state.run_id}
        )
    except BaseException:
        await close_work_connections(work)
        raise
    return work


async def close_work_connections(work: list[Connection]) -> None:
    for conn in work:
        try:
            await conn.close()
        except Exception:  # pragma: no cover - closing a broken connection
            log.debug("closing an ETL connection failed", exc_info=True)
    work.clear()


async def _fill_day_scope(state: RunState, work: list[Connection]) -> None:
    """The incremental run's users (day_scope.sql), on every work connection."""
    assert state.since is not None
    start, end = day_bounds(state.days[0])[0], day_bounds(state.days[-1])[1]
    params = {"start": start, "end": end, "since": state.since, "snapshot": state.snapshot}

    async def fill(conn: Connection) -> None:
        for statement in run_statements("day_scope"):
            await conn.execute(statement, params)

    await asyncio.gather(*(fill(conn) for conn in work))


async def load_days(state: RunState, work: list[Connection], day_steps: list[str]) -> None:
    """Load every day of the run, `len(work)` days side by side."""
    queue: asyncio.Queue[date] = asyncio.Queue()
    # Newest first: recent days are usually the biggest, and starting with the big
    # ones keeps the parallel loads from ending on one long straggler.
    for day in reversed(state.days):
        queue.put_nowait(day)
    total = len(state.days)
    state.tick("load days", 0, total)

    async def worker(conn: Connection) -> None:
        while True:
            try:
                day = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await state.check_cancel()
            await load_day(state, conn, day, day_steps)
            state.days_done += 1
            state.tick("load days", state.days_done, total)
            await state.save_progress("load days")

    try:
        async with asyncio.TaskGroup() as group:
            for conn in work:
                group.create_task(worker(conn))
    except BaseExceptionGroup as eg:
        raise most_telling(eg) from None


async def load_day(state: RunState, conn: Connection, day: date, day_steps: list[str]) -> None:
    """One day, all its steps, one transaction; retried whole on transient conflicts."""
    start, end = day_bounds(day)
    params = {
        "day": day, "day_start": start, "day_end": end, "stage_start": start - SESSION_GAP,
        "snapshot": state.snapshot, "run_id": state.run_id,
        "scoped": state.incremental, "fresh": state.fresh,
    }  # fmt: skip
    failed_step = [day_steps[0]]  # the step the current attempt is in

    def count_retry(retry_state: RetryCallState) -> None:
        step = failed_step[0]
        state.timing(step).retries += 1
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        log.warning(
            "ETL run %s: %s of %s failed (%s), retry %d of %d",
            state.run_id, step, day, type(exc).__name__, retry_state.attempt_number,
            state.config.max_retries,
        )  # fmt: skip

    retrying = AsyncRetrying(
        stop=stop_after_attempt(state.config.max_retries + 1),
        wait=wait_exponential(multiplier=RETRY_BACKOFF_S),
        retry=retry_if_exception_type(RETRYABLE_IN_TRANSACTION),
        before_sleep=count_retry,
        reraise=True,
    )
    local: dict[str, StepTiming] = {}
    async for attempt in retrying:
        with attempt:
            local = {}
            async with conn.transaction():
                if state.config.parallelism > 1:
                    await conn.execute(query("day_transaction"))
                for step in day_steps:
                    failed_step[0] = step
                    t0 = time.perf_counter()
                    rows = 0
                    for stmt in statements(step):
                        cur = await conn.execute(stmt, params)
                        if writes_rows(stmt):
                            rows += max(cur.rowcount or 0, 0)
                    timing = local.setdefault(step, StepTiming())
                    timing.ms += (time.perf_counter() - t0) * 1000
                    timing.rows += rows
    for step, timing in local.items():
        total = state.timing(step)
        total.ms += timing.ms
        total.rows += timing.rows
        if step != "extract":
            state.rows_written += timing.rows
