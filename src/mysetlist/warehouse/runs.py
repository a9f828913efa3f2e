"""ETL runs as the API and CLI see them: queue a run, list runs, cancel the active one.

Queuing inserts an `etl_runs` row (`queued`) — the partial unique index on active rows
makes a second one fail: `RunInProgress`, a Conflict — and defers the procrastinate job
that executes it in the same transaction (`core.job_queue`). Cancelling flags the row,
cancels the database work of the run (`pg_cancel_backend` on the backend pids it
recorded), asks procrastinate to abort the job, and waits briefly for the run to record
`cancelled`; when no process executes the run any more (its worker died), the cancel is
recorded here. Every manual trigger and cancel leaves a row in `etl_audit`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from datetime import date
from typing import Any

import orjson
import psycopg

from mysetlist.core.audit import record_audit
from mysetlist.core.db import Database, Row, fetch_all_in, fetch_one_in
from mysetlist.core.job_queue import defer_in_transaction, job_app
from mysetlist.core.watermarks import read_watermark
from mysetlist.warehouse import claiming
from mysetlist.warehouse.errors import NoActiveRun, RunInProgress, UnknownRun
from mysetlist.warehouse.ranges import WATERMARK
from mysetlist.warehouse.sql_files import query
from mysetlist.warehouse.steps import normalise_steps

log = logging.getLogger(__name__)

QUEUE = "warehouse"
RUN_TASK = "warehouse.etl_run"
CANCEL_POLL_S = 0.1

Connection = psycopg.AsyncConnection[Any]


async def _runs(
    conn: Connection, *, run_id: int | None = None, active: bool = False, limit: int = 1
) -> list[Row]:
    return await fetch_all_in(
        conn, query("run_rows"), {"id": run_id, "active": active, "limit": limit}
    )


async def _run_by_id(conn: Connection, run_id: int) -> Row | None:
    found = await _runs(conn, run_id=run_id)
    return found[0] if found else None


async def active_run(conn: Connection) -> Row | None:
    found = await _runs(conn, active=True)
    return found[0] if found else None


async def _audit(
    conn: Connection, run_id: int, action: str, actor_id: str | None, actor_role: str | None,
    details: dict[str, Any],
) -> None:  # fmt: skip
    await conn.execute(
        query("run_audit"),
        {
            "run_id": run_id,
            "action": action,
            "actor_id": actor_id,
            "actor_role": actor_role,
            "details": orjson.dumps(details).decode(),
        },
    )
    # The shared audit trail too (same transaction), with the request id of the API call.
    await record_audit(
        conn, f"warehouse.etl_{action}", actor_id=actor_id, actor_role=actor_role,
        target=("etl_run", run_id), details=details,
    )  # fmt: skip


async def queue_run(
    db: Database,
    *,
    from_day: date | None,
    to_day: date | None,
    steps: list[str] | None,
    actor_id: str | None,
    actor_role: str | None,
) -> Row:
    """Insert a queued run and defer its job. Raises RunInProgress when one is active."""
    mode = "daily" if from_day is None and to_day is None else "range"
    ordered = normalise_steps(steps, mode)
    async with db.transaction() as conn:
        await claiming.close_abandoned_if_idle(conn)
    try:
        async with db.transaction() as conn:
            row = await fetch_one_in(
                conn,
                query("run_queue"),
                {
                    "mode": mode,
                    "from_day": from_day,
                    "to_day": to_day,
                    "steps": ordered,
                    "actor_id": actor_id,
                    "actor_role": actor_role,
                },
            )
            assert row is not None
            run_id = int(row["id"])
            await _audit(conn, run_id, "trigger", actor_id, actor_role, {
                "from": from_day.isoformat() if from_day else None,
                "to": to_day.isoformat() if to_day else None,
                "steps": ordered,
            })  # fmt: skip
            # Same transaction: a run row never exists without its job, nor a job
            # without its row.
            job_id = await defer_in_transaction(
                conn, RUN_TASK, queue=QUEUE, queueing_lock=f"etl-run-{run_id}", run_id=run_id
            )
            await conn.execute(query("run_set_job"), {"job_id": job_id, "run_id": run_id})
    except psycopg.errors.UniqueViolation:
        async with db.transaction() as conn:
            active = await active_run(conn)
        raise RunInProgress(active["id"] if active else None) from None
    async with db.transaction() as conn:
        queued = await _run_by_id(conn, run_id)
    assert queued is not None
    return queued


async def cancel_active(
    db: Database, *, actor_id: str | None, actor_role: str | None, wait_s: float = 5.0
) -> Row:
    """Cancel the queued or running run; returns its row after it settled (or `wait_s`)."""
    async with db.transaction() as conn:
        run = await fetch_one_in(conn, query("run_request_cancel"), {"actor_id": actor_id})
        if run is None:
            raise NoActiveRun()
        await _audit(
            conn, int(run["id"]), "cancel", actor_id, actor_role,
            {"status_at_cancel": run["status"]},
        )  # fmt: skip
    run_id = int(run["id"])
    if run["job_id"] is not None:
        await _abort_job(db.url, int(run["job_id"]))
    deadline = time.monotonic() + wait_s
    while run["status"] == "running":
        async with db.transaction() as conn:
            # Stop the database work now; repeat in case a statement started after the
            # previous signal (the run also checks its flag between statements).
            await conn.execute(
                query("run_cancel_backends"), {"pids": list(run["backend_pids"] or [])}
            )
            now = await fetch_one_in(conn, query("run_status"), {"run_id": run_id})
            assert now is not None
            run = {**run, "status": now["status"], "backend_pids": now["backend_pids"]}
            if run["status"] == "running" and await claiming.try_lock(conn):
                # Nobody is executing it (the worker died): record the cancel ourselves.
                try:
                    await conn.execute(query("run_record_cancelled"), {"run_id": run_id})
                finally:
                    await claiming.unlock(conn)
                continue
        if run["status"] != "running" or time.monotonic() >= deadline:
            break
        await asyncio.sleep(CANCEL_POLL_S)
    async with db.transaction() as conn:
        settled = await _run_by_id(conn, run_id)
    assert settled is not None
    return settled


async def _abort_job(database_url: str, job_id: int) -> None:
    """Ask procrastinate to cancel (queued) or abort (running) the run's job."""
    try:
        app = job_app(database_url)
        async with app.open_async():
            await app.job_manager.cancel_job_by_id_async(job_id, abort=True)
    except Exception:
        log.warning("could not cancel procrastinate job %s", job_id, exc_info=True)


async def list_runs(conn: Connection, limit: int = 20) -> list[Row]:
    return await _runs(conn, limit=limit)


async def get_run(conn: Connection, run_id: int) -> Row:
    """One run with its quality checks and audit trail; UnknownRun when there is none."""
    run = await _run_by_id(conn, run_id)
    if run is None:
        raise UnknownRun(run_id)
    run["checks"] = await fetch_all_in(conn, query("run_checks"), {"run_id": run_id})
    run["audit"] = await fetch_all_in(conn, query("run_audit_trail"), {"run_id": run_id})
    return run


async def watermark(conn: Connection) -> dict[str, Any] | None:
    """The ETL's watermark (how far daily and incremental runs got)."""
    wm = await read_watermark(conn, WATERMARK)
    return asdict(wm) if wm is not None else None
