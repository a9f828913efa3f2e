"""A job deferred with `defer_in_transaction` commits or rolls back with the caller's rows.

The deferring App has no connection settings and is never opened: every test here also
proves the INSERT runs on the caller's connection (procrastinate's `connection=`), since
there is no pool it could have used instead."""

from __future__ import annotations

import uuid

import procrastinate
import psycopg
import pytest

from mysetlist.core.job_queue import defer_in_transaction
from mysetlist.core.runtime import Runtime

pytestmark = pytest.mark.db

TASK = "tests.job_queue.probe"


async def _jobs(database_url: str, marker: str) -> list[tuple[str, str, str | None]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            """SELECT queue_name, status::text, queueing_lock FROM procrastinate_jobs
                WHERE task_name = %s AND args->>'marker' = %s""",
            (TASK, marker),
        )
        return list(await cur.fetchall())


async def test_job_commits_with_the_callers_transaction(database_url: str) -> None:
    marker = uuid.uuid4().hex
    connect = psycopg.AsyncConnection.connect
    async with await connect(database_url, autocommit=True) as conn, conn.transaction():
        job_id = await defer_in_transaction(
            conn, TASK, queue="probe", queueing_lock=f"probe-{marker}", marker=marker
        )
        # not visible to anyone else (a worker) before the caller commits
        assert await _jobs(database_url, marker) == []
    assert job_id > 0
    assert await _jobs(database_url, marker) == [("probe", "todo", f"probe-{marker}")]


async def test_job_rolls_back_with_the_callers_transaction(database_url: str) -> None:
    marker = uuid.uuid4().hex

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction(force_rollback=True):
            await defer_in_transaction(conn, TASK, queue="probe", marker=marker)
        assert conn.info.transaction_status == conn.info.transaction_status.IDLE
    assert await _jobs(database_url, marker) == []


async def test_queueing_lock_conflict_is_procrastinates_error_and_writes_nothing(
    database_url: str,
) -> None:
    marker, lock = uuid.uuid4().hex, f"probe-{uuid.uuid4().hex}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            await defer_in_transaction(conn, TASK, queue="probe", queueing_lock=lock, marker="x")
        with pytest.raises(procrastinate.exceptions.AlreadyEnqueued):
            async with conn.transaction():
                await defer_in_transaction(
                    conn, TASK, queue="probe", queueing_lock=lock, marker=marker
                )
    assert await _jobs(database_url, marker) == []


async def test_refuses_a_connection_outside_a_transaction(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="open transaction"):
            await defer_in_transaction(conn, TASK, queue="probe", marker="never")


async def test_a_service_transaction_defers_with_json_arguments(runtime: Runtime) -> None:
    """The shape the services use: a pool transaction (dict rows) and nested arguments."""
    marker = uuid.uuid4().hex
    async with runtime.db.transaction() as conn:
        job_id = await defer_in_transaction(
            conn, TASK, queue="probe", marker=marker, payload={"ids": [1, 2], "kind": "x"}
        )
    row = await runtime.db.fetch_one(
        "SELECT task_name, queue_name, args FROM procrastinate_jobs WHERE id = %s", (job_id,)
    )
    assert row == {
        "task_name": TASK,
        "queue_name": "probe",
        "args": {"marker": marker, "payload": {"ids": [1, 2], "kind": "x"}},
    }
