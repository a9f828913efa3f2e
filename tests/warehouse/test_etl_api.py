"""The ETL management API over real HTTP, with a real procrastinate worker executing the
queued runs. Uses the session's shared database (only run mechanics are checked here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import procrastinate
import psycopg
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.warehouse.jobs import register_run_task

pytestmark = pytest.mark.db

ETL = "/api/analytics/etl"


@pytest.fixture
async def worker(
    database_url: str, settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """A real procrastinate worker on the `etl` queue (the API only queues runs)."""
    monkeypatch.setenv("ETL_PARALLELISM", "1")
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    register_run_task(app, settings)
    async with app.open_async():
        task = asyncio.create_task(
            app.run_worker_async(
                queues=["etl"], concurrency=1, install_signal_handlers=False, wait=True
            )
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def _sleeping(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%%'
                  AND application_name LIKE 'mysetlist-etl%%'"""
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


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
        unknown = await client.post(ETL, headers=admin, json={"steps": ["nope"]})
        assert unknown.status_code == 422
        assert (await client.get(ETL, headers=admin)).json()["active"] is None


async def test_queued_run_is_executed_by_the_worker(
    api_url: str, token_for: Any, worker: None
) -> None:
    admin = {"Authorization": f"Bearer {token_for(uuid.uuid4(), admin=True)}"}
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    steps = ["daily_user_stats", "daily_platform_metrics", "quality_checks"]
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        started = await client.post(
            ETL, headers=admin, json={"from": day, "to": day, "steps": steps}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.headers["location"] == f"{ETL}/{run_id}"
        deadline = time.monotonic() + 30
        while True:
            run = (await client.get(f"{ETL}/{run_id}", headers=admin)).json()
            if run["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.2)
    assert run["status"] == "succeeded", run["error"]
    assert run["steps"] == ["extract", *steps]  # extract comes with any day step
    assert set(run["step_timings"]) == {"extract", *steps}
    assert (run["from_day"], run["to_day"], run["days_done"]) == (day, day, 1)
    names = {c["name"] for c in run["checks"]}
    assert {"schema_columns", "days_present", "events_reconcile", "votes_by_day"} <= names
    assert run["checks_failed"] == sum(1 for c in run["checks"] if not c["passed"])
    assert run["checks_status"] == ("failed" if run["checks_failed"] else "passed")
    assert run["job_id"] is not None


async def test_start_conflict_and_cancel_within_two_seconds(
    api_url: str,
    token_for: Any,
    database_url: str,
    worker: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Test hook (see warehouse/config.py): each day's extract sleeps in the database.
    monkeypatch.setenv("ETL_TEST_SLEEP", "extract=60")
    admin_id = uuid.uuid4()
    admin = {"Authorization": f"Bearer {token_for(admin_id, admin=True)}"}
    service = {"Authorization": f"Bearer {token_for(uuid.uuid4(), role='service_role')}"}
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        started = await client.post(ETL, headers=admin, json={"from": day, "to": day})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.json()["status"] == "queued"

        # The worker picks it up and sits in the (test-slowed) extract of the day.
        deadline = time.monotonic() + 20
        while True:
            status = (await client.get(ETL, headers=admin)).json()
            active = status["active"]
            if active and active["status"] == "running" and await _sleeping(database_url):
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)
        assert active["id"] == run_id

        # At most one run: a second start is refused while it runs.
        second = await client.post(ETL, headers=service, json={})
        assert second.status_code == 409
        assert second.json()["active_run_id"] == run_id

        t0 = time.monotonic()
        cancelled = await client.delete(ETL, headers=admin)
        elapsed = time.monotonic() - t0
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert elapsed < 2.0
        assert await _sleeping(database_url) == 0  # the database work really stopped

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
