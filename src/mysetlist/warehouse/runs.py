"""ETL runs as the API and CLI see them: queue a run, list runs, cancel the active one.

Queuing inserts an `etl_runs` row (`queued`) — the partial unique index on active rows
makes a second one fail, which the API answers with 409 — and defers the procrastinate job
that executes it in the same transaction (`core.job_queue`). Cancelling flags the row,
cancels the database work of the run (`pg_cancel_backend` on the backend pids it
recorded), asks procrastinate to abort the job, and waits briefly for the run to record
`cancelled`. Every manual trigger and cancel leaves a row in `etl_audit`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Any

import orjson
import procrastinate
import psycopg
from psycopg.rows import dict_row

from mysetlist.core.job_queue import defer_in_transaction
from mysetlist.warehouse import pipeline

log = logging.getLogger(__name__)

QUEUE = "etl"
RUN_TASK = "mysetlist.warehouse.etl_run"

RUN_COLUMNS = """id, trigger, mode, from_day, to_day, steps, status, requested_by,
  requested_by_role, job_id, attempt, created_at, started_at, finished_at, duration_ms,
  current_step, days_total, days_done, rows_written, step_timings, checks_status,
  checks_failed, maintenance, error, cancel_requested_at, cancelled_by"""


_BY_ID = f"SELECT {RUN_COLUMNS} FROM analytics.etl_runs WHERE id = %s"


class RunConflict(Exception):
    def __init__(self, active: dict[str, Any] | None) -> None:
        super().__init__("an ETL run is already queued or running")
        self.active = active


class NoActiveRun(Exception):
    pass


async def _rows(conn: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return list(await cur.fetchall())


async def active_run(conn: Any) -> dict[str, Any] | None:
    rows = await _rows(
        conn,
        f"SELECT {RUN_COLUMNS} FROM analytics.etl_runs WHERE status IN ('queued', 'running')",
    )
    return rows[0] if rows else None


async def queue_run(
    database_url: str,
    *,
    from_day: date | None,
    to_day: date | None,
    steps: list[str] | None,
    actor_id: str | None,
    actor_role: str | None,
) -> dict[str, Any]:
    """Insert a queued run and defer its job. Raises RunConflict when one is active."""
    mode = "daily" if from_day is None and to_day is None else "range"
    ordered = pipeline.normalise_steps(steps, mode)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await pipeline.close_abandoned_if_idle(conn)
        try:
            async with conn.transaction():
                rows = await _rows(
                    conn,
                    """INSERT INTO analytics.etl_runs
                         (trigger, mode, from_day, to_day, steps, status, requested_by,
                          requested_by_role)
                       VALUES ('api', %s, %s, %s, %s, 'queued', %s, %s)
                       RETURNING id""",
                    (mode, from_day, to_day, ordered, actor_id, actor_role),
                )
                run_id = int(rows[0]["id"])
                await conn.execute(
                    """INSERT INTO analytics.etl_audit
                         (run_id, action, actor_id, actor_role, details)
                       VALUES (%s, 'trigger', %s, %s, %s)""",
                    (
                        run_id,
                        actor_id,
                        actor_role,
                        orjson.dumps(
                            {
                                "from": from_day.isoformat() if from_day else None,
                                "to": to_day.isoformat() if to_day else None,
                                "steps": ordered,
                            }
                        ).decode(),
                    ),
                )
                # Same transaction: a run row never exists without its job, nor a job
                # without its row.
                job_id = await defer_in_transaction(
                    conn, RUN_TASK, queue=QUEUE, queueing_lock=f"etl-run-{run_id}", run_id=run_id
                )
                await conn.execute(
                    "UPDATE analytics.etl_runs SET job_id = %s WHERE id = %s", (job_id, run_id)
                )
        except psycopg.errors.UniqueViolation:
            raise RunConflict(await active_run(conn)) from None
        rows = await _rows(conn, _BY_ID, (run_id,))
        return rows[0]


def job_app(database_url: str) -> procrastinate.App:
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))


async def cancel_active(
    database_url: str, *, actor_id: str | None, actor_role: str | None, wait_s: float = 5.0
) -> dict[str, Any]:
    """Cancel the queued or running run; returns its row after it settled (or `wait_s`)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            rows = await _rows(
                conn,
                """UPDATE analytics.etl_runs
                      SET cancel_requested_at = coalesce(cancel_requested_at, now()),
                          cancelled_by = %s,
                          status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                          finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
                    WHERE status IN ('queued', 'running')
                RETURNING id, status, backend_pids, job_id""",
                (actor_id,),
            )
            if not rows:
                raise NoActiveRun()
            run = rows[0]
            await conn.execute(
                """INSERT INTO analytics.etl_audit (run_id, action, actor_id, actor_role, details)
                   VALUES (%s, 'cancel', %s, %s, %s)""",
                (
                    run["id"],
                    actor_id,
                    actor_role,
                    orjson.dumps({"status_at_cancel": run["status"]}).decode(),
                ),
            )
        run_id = int(run["id"])
        if run["job_id"] is not None:
            try:
                app = job_app(database_url)
                async with app.open_async():
                    await app.job_manager.cancel_job_by_id_async(int(run["job_id"]), abort=True)
            except Exception:
                log.warning("could not cancel procrastinate job %s", run["job_id"], exc_info=True)
        deadline = time.monotonic() + wait_s
        while True:
            if run["status"] == "running":
                # Stop the database work now; repeat in case a statement started after the
                # previous signal (the run also checks its flag between statements).
                await conn.execute(
                    "SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid",
                    (list(run["backend_pids"] or []),),
                )
            rows = await _rows(
                conn, "SELECT status, backend_pids FROM analytics.etl_runs WHERE id = %s", (run_id,)
            )
            run = {**run, **rows[0]}
            if run["status"] != "running":
                break
            if await pipeline.try_lock(conn):
                # Nobody is executing it (the worker died): record the cancel ourselves.
                try:
                    await conn.execute(
                        """UPDATE analytics.etl_runs SET status = 'cancelled', finished_at = now()
                            WHERE id = %s AND status = 'running'""",
                        (run_id,),
                    )
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (pipeline.LOCK_KEY,))
                continue
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        result = await _rows(conn, _BY_ID, (run_id,))
        return result[0]


async def list_runs(conn: Any, limit: int = 20) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        f"SELECT {RUN_COLUMNS} FROM analytics.etl_runs ORDER BY id DESC LIMIT %s",
        (limit,),
    )


async def get_run(conn: Any, run_id: int) -> dict[str, Any] | None:
    rows = await _rows(conn, _BY_ID, (run_id,))
    if not rows:
        return None
    run = rows[0]
    run["checks"] = await _rows(
        conn,
        """SELECT name, category, passed, details, checked_at FROM analytics.etl_quality_checks
            WHERE run_id = %s ORDER BY id""",
        (run_id,),
    )
    run["audit"] = await _rows(
        conn,
        """SELECT action, actor_id, actor_role, at, details FROM analytics.etl_audit
            WHERE run_id = %s ORDER BY id""",
        (run_id,),
    )
    return run


async def watermark(conn: Any) -> dict[str, Any] | None:
    rows = await _rows(
        conn,
        """SELECT last_full_day, last_received_at, run_id, updated_at
             FROM analytics.etl_watermarks WHERE pipeline = %s""",
        (pipeline.WATERMARK,),
    )
    return rows[0] if rows else None
