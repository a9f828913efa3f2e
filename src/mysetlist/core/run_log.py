"""The run log: the one way a background activity leaves a row (`analytics.job_runs`).

Every periodic or on-demand activity of every capability (the tracking rollup, partition
upkeep, the warehouse's scheduled and API-queued ETL runs, ...) runs inside `job_run`:

    async with job_run(db, "tracking.hourly_rollup", job_id=context.job.id) as run:
        run.rows = ...
        run.details = {...}

A `running` row is written and committed before the body starts, so work in progress, and
work whose process died (a row left `running`), is visible to operators and the
dashboard. When the body ends the row gets `succeeded`, `failed` (error "Type: message")
or `cancelled` (the task was cancelled, e.g. a procrastinate abort), with its duration.

A capability whose work has a richer life of its own keeps a domain record beside it:
`analytics.etl_runs` holds an ETL run's day range, steps, per-step progress and timings,
cancel requests and quality checks (what the ETL API shows), as notification deliveries
will for sending. The run log is the common index over all of them: what ran, when, how
long, how it ended — in one table, whatever the capability.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import procrastinate

from mysetlist.core.db import Database, read_sql

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.core"
PRUNE_TASK = "core.prune_job_runs"
# The tracking rollup alone logs a run every 20 s; a month of history is plenty to see
# trends and failures, and keeps the table small.
RETENTION = timedelta(days=30)


@dataclass
class RunRecord:
    """What the body reports about its run (stored when it ends)."""

    run_id: int
    rows: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def job_run(
    db: Database, task: str, *, trigger: str = "schedule", job_id: int | None = None
) -> AsyncIterator[RunRecord]:
    """Record a run of `task`: a committed `running` row first, then its outcome."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            read_sql(_PACKAGE, "job_run_start.sql"),
            {"task": task, "trigger": trigger, "job_id": job_id},
        )
        row = await cur.fetchone()
    assert row is not None
    record = RunRecord(run_id=int(row[0]))
    try:
        yield record
    except asyncio.CancelledError:
        await _finish(db, record, "cancelled", "CancelledError: the run was cancelled")
        raise
    except BaseException as exc:
        await _finish(db, record, "failed", f"{type(exc).__name__}: {exc}")
        raise
    await _finish(db, record, "succeeded", None)


async def _finish(db: Database, record: RunRecord, status: str, error: str | None) -> None:
    try:
        async with db.transaction() as conn:
            await conn.execute(
                read_sql(_PACKAGE, "job_run_finish.sql"),
                {
                    "id": record.run_id,
                    "status": status,
                    "rows": record.rows,
                    "details": orjson.dumps(record.details, default=str).decode(),
                    "error": error,
                },
            )
    except Exception:
        # The work's own outcome (or its exception) matters more than its log row.
        log.exception("could not record the end of run %s (%s)", record.run_id, status)


async def prune_job_runs(db: Database, *, now: datetime | None = None) -> int:
    """Delete the run log's rows older than RETENTION; returns how many."""
    cutoff = (now or datetime.now(UTC)) - RETENTION
    async with db.transaction() as conn:
        cur = await conn.execute(read_sql(_PACKAGE, "job_runs_prune.sql"), {"cutoff": cutoff})
        return cur.rowcount


def register(app: procrastinate.App) -> None:
    """The run log's own upkeep, daily (naming and queue per core/job_queue.py)."""
    from mysetlist.core.job_queue import periodic_task
    from mysetlist.core.runtime import Runtime

    @periodic_task(app, name=PRUNE_TASK, queue="core", cron="17 3 * * *")
    async def prune(runtime: Runtime, run: RunRecord) -> None:
        run.rows = await prune_job_runs(runtime.db)
