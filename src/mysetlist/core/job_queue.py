"""Deferring a procrastinate job inside the caller's own transaction.

A job deferred on another connection can be lost (the caller commits, then dies before the
defer) or can run for a row that was rolled back. Here the job row is written by the same
connection and transaction as the caller's rows, so both commit or neither does.

procrastinate's `PsycopgConnector.open_async(pool=…)` accepts an external pool, and for
queries only ever asks it for `pool.connection()`; handing it an object whose `connection()`
yields the caller's connection keeps procrastinate's own `defer` (its SQL, its queueing-lock
and JSON handling) while putting the write in our transaction.
"""

from __future__ import annotations

import contextlib
from typing import Any

import procrastinate
from psycopg import AsyncConnection


class _CallersConnection:
    """The part of `psycopg_pool.AsyncConnectionPool` a connector uses to run a query."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    def connection(self) -> contextlib.nullcontext[AsyncConnection[Any]]:
        return contextlib.nullcontext(self._conn)


async def defer_in_transaction(
    conn: AsyncConnection[Any],
    task_name: str,
    *,
    queue: str,
    queueing_lock: str | None = None,
    lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Defer `task_name` with `task_kwargs` on `conn`; returns the job id.

    Call it inside `conn.transaction()`: the job becomes visible to workers only when that
    transaction commits. A queueing-lock conflict raises procrastinate's `AlreadyEnqueued`
    and, like any failed statement, aborts the transaction (use a savepoint to go on).
    """
    if conn.info.transaction_status == conn.info.transaction_status.IDLE:
        raise RuntimeError("defer_in_transaction needs an open transaction on conn")
    connector = procrastinate.PsycopgConnector()
    await connector.open_async(pool=_CallersConnection(conn))  # type: ignore[arg-type]
    app = procrastinate.App(connector=connector)
    job_id: int = await app.configure_task(
        task_name, queue=queue, queueing_lock=queueing_lock, lock=lock
    ).defer_async(**task_kwargs)
    return job_id
