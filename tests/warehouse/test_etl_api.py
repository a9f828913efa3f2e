"""The ETL management API over real HTTP, with a real procrastinate worker executing the
queued runs. Uses the session's shared database (only run mechanics are checked here);
a slow run is made by real contention: the test holds a lock on a table the run writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_app, worker_context
from mysetlist.core.runtime import Runtime
from mysetlist.warehouse.jobs import register_run_task
from mysetlist.warehouse.runs import QUEUE
from tests.conditions import until
from tests.warehouse.conftest import etl_backends, etl_backends_waiting_on_a_lock, one

pytestmark = pytest.mark.db

ETL = "/api/analytics/etl"
REPO = Path(__file__).resolve().parents[2]
# A day no other test writes events for (the shared database).
QUIET_DAY = (datetime.now(UTC) - timedelta(days=400)).date()


@pytest.fixture
async def worker(
    database_url: str, settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """A real procrastinate worker on the warehouse queue (the API only queues runs)."""
    monkeypatch.setenv("ETL_PARALLELISM", "1")
    monkeypatch.setenv("ETL_LOCK_TIMEOUT_MS", "0")  # a blocked run waits for the blocker
    app = job_app(database_url)
    register_run_task(app, settings)
    async with app.open_async():
        task = asyncio.create_task(
            app.run_worker_async(
                queues=[QUEUE],
                concurrency=1,
                install_signal_handlers=False,
                wait=True,
                additional_context=worker_context(runtime),
            )
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on `table` for the block: a run writing it waits."""
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        await blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            await blocker.rollback()


async def test_non_operators_are_refused(api_url: str, token_for: Any) -> None:
    user = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
    async with httpx.AsyncClient(base_url=api_url) as client:
        for method in ("GET", "POST", "DELETE"):
            response = await client.request(method, ETL, headers=user)
            assert response.status_code == 403, (method, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            anonymous = await client.request(method, ETL)
            assert anonymous.status_code == 401


async def test_bad_ranges_and_steps_are_422(api_url: str, token_for: Any) -> None:
    admin = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    async with httpx.AsyncClient(base_url=api_url) as client:
        bad = await client.post(ETL, headers=admin, json={"from": "2026-02-01", "to": "2026-01-01"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        unknown = await client.post(ETL, headers=admin, json={"steps": ["nope"]})
        assert unknown.status_code == 422
        assert "nope" in unknown.text
        # A step folded into another (user_engagement_warehouse is written by the
        # daily_user_stats statement) is refused with where its work went, not a 500.
        old_step = {"steps": ["user_engagement_warehouse"]}
        folded = await client.post(ETL, headers=admin, json=old_step)
        assert folded.status_code == 422, folded.text
        assert "now part of step 'daily_user_stats'" in folded.text
        assert (await client.get(ETL, headers=admin)).json()["active"] is None


async def _finished(client: httpx.AsyncClient, headers: dict[str, str], run_id: int) -> Any:
    async def settled() -> Any:
        run = (await client.get(f"{ETL}/{run_id}", headers=headers)).json()
        return run if run["status"] not in ("queued", "running") else None

    return await until(settled, f"ETL run {run_id} to finish")


async def test_queued_run_is_executed_by_the_worker(
    api_url: str, token_for: Any, database_url: str, worker: None
) -> None:
    admin = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    day = QUIET_DAY.isoformat()
    start = datetime.combine(QUIET_DAY, datetime.min.time(), tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """INSERT INTO analytics.user_events (anonymous_id, event_type, page_url, created_at)
               SELECT 'quiet-' || i, 'page_view', '/q', %s + i * interval '1 minute'
                 FROM generate_series(1, 7) i""",
            (start,),
        )
    steps = ["daily_user_stats", "daily_platform_metrics", "quality_checks"]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        started = await client.post(
            ETL, headers=admin, json={"from": day, "to": day, "steps": steps}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.headers["location"] == f"{ETL}/{run_id}"
        run = await _finished(client, admin, run_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["steps"] == ["extract", *steps]  # extract comes with any day step
        assert set(run["step_timings"]) == {"extract", *steps}
        assert (run["from_day"], run["to_day"], run["days_done"]) == (day, day, 1)
        assert run["job_id"] is not None
        # The day's 7 events (inserted above) are in the warehouse, and the checks over
        # the day say so.
        assert one(
            database_url,
            "SELECT events_total FROM analytics.daily_platform_metrics WHERE day = %s",
            (QUIET_DAY,),
        ) == (7,)
        checks = {c["name"]: c["passed"] for c in run["checks"]}
        assert checks["days_present"] is True
        assert checks["events_reconcile"] is True
        assert checks["votes_by_day"] is True
        assert checks["schema_columns"] is True

        # The warehouse disagrees with the events now (an 8th event, received before the
        # next run's snapshot): a checks-only run over the day must report it failed.
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO analytics.user_events (anonymous_id, event_type, created_at)"
                " VALUES ('quiet-8', 'page_view', %s)",
                (start + timedelta(hours=5),),
            )
        again = await client.post(
            ETL, headers=admin, json={"from": day, "to": day, "steps": ["quality_checks"]}
        )
        assert again.status_code == 202, again.text
        rechecked = await _finished(client, admin, again.json()["run_id"])
    assert rechecked["status"] == "succeeded"
    assert rechecked["checks_status"] == "failed"
    assert rechecked["checks_failed"] >= 1
    reconcile = next(c for c in rechecked["checks"] if c["name"] == "events_reconcile")
    assert reconcile["passed"] is False
    assert reconcile["details"]["mismatched_days"][0]["source_events"] == 8


async def test_start_conflict_and_cancel_of_a_running_run(
    api_url: str, token_for: Any, database_url: str, worker: None
) -> None:
    admin_id = uuid.uuid4()
    admin = {"Authorization": f"Bearer {token_for(admin_id, admin=True)}"}
    service = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as client,
        table_locked(database_url, "analytics.daily_user_stats"),
    ):
        started = await client.post(ETL, headers=admin, json={"from": day, "to": day})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.json()["status"] == "queued"

        # The worker picks it up; the day's load waits for our lock.
        await until(
            lambda: asyncio.to_thread(etl_backends_waiting_on_a_lock, database_url),
            "the run to wait for the locked table",
        )
        status = (await client.get(ETL, headers=admin)).json()
        assert (status["active"]["id"], status["active"]["status"]) == (run_id, "running")

        # At most one run: a second start is refused while it runs.
        second = await client.post(ETL, headers=service, json={})
        assert second.status_code == 409
        assert second.json()["active_run_id"] == run_id

        cancelled = await client.delete(ETL, headers=admin)
        assert cancelled.status_code == 200, cancelled.text
        # The answer came once the run had recorded its cancel (not after the wait ran out)…
        assert cancelled.json()["status"] == "cancelled"
        # …and its database work stopped although the lock it waited for is still held.
        assert etl_backends_waiting_on_a_lock(database_url) == 0

        detail = (await client.get(f"{ETL}/{run_id}", headers=admin)).json()
        assert detail["status"] == "cancelled"
        assert detail["cancelled_by"] == str(admin_id)
        assert detail["finished_at"] is not None
        assert [(a["action"], a["actor_id"]) for a in detail["audit"]] == [
            ("trigger", str(admin_id)),
            ("cancel", str(admin_id)),
        ]
        history = (await client.get(ETL, headers=admin)).json()
        assert history["active"] is None
        assert history["runs"][0]["id"] == run_id
        # Nothing left to cancel.
        assert (await client.delete(ETL, headers=admin)).status_code == 404


async def test_cancel_of_a_queued_run(api_url: str, token_for: Any, database_url: str) -> None:
    """No worker runs: the run stays queued, and cancelling it settles it at once and
    cancels its procrastinate job, so no worker will ever start it."""
    admin = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        started = await client.post(ETL, headers=admin, json={"from": QUIET_DAY.isoformat()})
        assert started.status_code == 202, started.text
        run_id, job_id = started.json()["run_id"], started.json()["run"]["job_id"]
        cancelled = await client.delete(ETL, headers=admin)
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["run_id"], cancelled.json()["status"]) == (run_id, "cancelled")
        assert cancelled.json()["run"]["started_at"] is None  # it never ran
        assert one(
            database_url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ) == ("cancelled",)
        # The slot is free again.
        assert (await client.get(ETL, headers=admin)).json()["active"] is None


async def test_cancel_of_a_run_whose_worker_died(
    api_url: str, token_for: Any, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """A run's process is killed mid-run (its row still says `running`): the cancel
    records `cancelled` itself, since nobody holds the run lock any more."""
    admin = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    day = QUIET_DAY.isoformat()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "ETL_PARALLELISM": "1",
        "ETL_LOCK_TIMEOUT_MS": "0",
    }
    async with table_locked(database_url, "analytics.daily_user_stats"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mysetlist", "etl", "run", "--from", day, "--to", day,
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await until(
                lambda: asyncio.to_thread(etl_backends_waiting_on_a_lock, database_url),
                "the CLI run to wait for the locked table",
            )
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
        await until(
            lambda: asyncio.to_thread(lambda: etl_backends(database_url) == 0),
            "the killed run's sessions to end",
        )
    (run_id, status) = one(
        database_url, "SELECT id, status FROM analytics.etl_runs ORDER BY id DESC LIMIT 1"
    )
    assert status == "running"  # nobody recorded an outcome: the process died
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        cancelled = await client.delete(ETL, headers=admin)
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["run_id"], cancelled.json()["status"]) == (run_id, "cancelled")
        assert (await client.get(ETL, headers=admin)).json()["active"] is None
