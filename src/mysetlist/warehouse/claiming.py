"""At most one ETL run executes at a time, anywhere: who may run, and the run's row.

The executing run holds the session advisory lock `LOCK_NAME` (core.job_queue's advisory
locks) on its *control* connection.
A process that dies loses its lock with its connection, so a `running` row while the lock
is free is a run whose process stopped: it is closed as failed ("abandoned"). The
`etl_runs` unique index on active rows keeps a second run from being queued or started.

As for every task (core/job_queue.py), not procrastinate's `lock=`: a worker killed while
holding a procrastinate lock wedges the queue until stalled-job recovery, while an advisory
lock goes away with its session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

import psycopg

from mysetlist.core.db import Row, fetch_one_in
from mysetlist.core.job_queue import advisory_unlock, try_advisory_lock
from mysetlist.warehouse.errors import EtlBusy
from mysetlist.warehouse.sql_files import query
from mysetlist.warehouse.steps import RunMode, normalise_steps

LOCK_NAME = "warehouse.etl"  # the advisory lock held by the executing run
LOCK_POLL_S = 0.5

Connection = psycopg.AsyncConnection[Any]


# What started a run: the nightly schedule, the incremental one, the API or the CLI.
RunTrigger = Literal["schedule", "incremental", "api", "cli"]


@dataclass
class RunRequest:
    trigger: RunTrigger
    mode: RunMode
    from_day: date | None = None
    to_day: date | None = None
    steps: list[str] | None = None
    requested_by: str | None = None
    requested_by_role: str | None = None


async def try_lock(conn: Connection) -> bool:
    return await try_advisory_lock(conn, LOCK_NAME)


async def unlock(conn: Connection) -> None:
    await advisory_unlock(conn, LOCK_NAME)


async def close_abandoned(conn: Connection, *, exclude: int | None = None) -> int:
    """Mark `running` rows failed when their process is gone. Caller holds the lock or has
    just seen it free."""
    cur = await conn.execute(query("run_close_abandoned"), {"exclude": exclude})
    return int(cur.rowcount or 0)


async def close_abandoned_if_idle(conn: Connection) -> bool:
    """If no process holds the run lock, close `running` rows as abandoned — while holding
    the lock, so a run starting at that moment cannot be mistaken for a dead one.
    Returns whether the lock was free."""
    if not await try_lock(conn):
        return False
    try:
        await close_abandoned(conn)
    finally:
        await unlock(conn)
    return True


@asynccontextmanager
async def run_lock(
    control: Connection, *, run_id: int | None, wait_for_lock_s: float
) -> AsyncIterator[bool]:
    """Hold the run lock on `control` for the block. Yields False (without the lock) when
    the queued run `run_id` was settled meanwhile — cancelled, or run by someone else —
    so there is nothing to do. Raises EtlBusy after `wait_for_lock_s` without the lock."""
    deadline = time.monotonic() + wait_for_lock_s
    while not await try_lock(control):
        if run_id is not None:
            row = await fetch_one_in(control, query("run_status"), {"run_id": run_id})
            if row is None or row["status"] not in ("queued", "failed"):
                yield False
                return
        if time.monotonic() >= deadline:
            raise EtlBusy("another ETL run is in progress")
        await asyncio.sleep(LOCK_POLL_S)
    try:
        await close_abandoned(control, exclude=run_id)
        yield True
    finally:
        await unlock(control)


async def claim(control: Connection, run_id: int | None, request: RunRequest | None) -> Row | None:
    """The run's row, now `running`: the queued run `run_id` (None when it was cancelled
    or already settled), or a new row for `request`. Caller holds the run lock."""
    if run_id is not None:
        return await fetch_one_in(control, query("run_claim_queued"), {"run_id": run_id})
    if request is None:
        raise ValueError("give run_id or request")
    steps = normalise_steps(request.steps, request.mode)
    try:
        return await fetch_one_in(control, query("run_start"), {**asdict(request), "steps": steps})
    except psycopg.errors.UniqueViolation:
        raise EtlBusy("another ETL run is queued") from None
