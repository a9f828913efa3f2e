"""The live demo: simulated fans move the live metrics through the real API (ingest, the
live recorder, Redis), write votes and follows under their own role, and send
notifications through the real send path; they stop when the API does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings, load_settings
from mysetlist.core.db import Database
from mysetlist.demo.live import FanSimulator, Pace
from mysetlist.demo.world import WorldSpec, build_world
from tests.conditions import until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, Servers, serve_app
from tests.demo.conftest import TEST_CIPHER

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def live_world(
    fresh_database: Callable[[], str], servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Settings, str]]:
    """A small world whose present is now (its next shows lie ahead), and an API on it
    with live metrics under a key prefix of its own."""
    url = fresh_database()
    build_world(url, WorldSpec(users=80, days=7, seed=5), cipher=TEST_CIPHER)
    settings = load_settings(
        DATABASE_URL=url, REDIS_URL=servers.redis_url,
        MYSETLIST_DATA_DIR=str(tmp_path_factory.mktemp("live")), JWT_SECRET=TEST_JWT_SECRET,
        MYSETLIST_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
        MYSETLIST_REDIS_KEY_PREFIX=f"live-demo-{uuid.uuid4().hex[:10]}",
    )  # fmt: skip
    from mysetlist.api import create_app

    with serve_app(create_app(settings, url, servers.redis_url, with_worker=False)) as api:
        yield url, settings, api


async def test_simulated_fans_move_the_live_metrics_and_stop_with_the_api(
    live_world: tuple[str, Settings, str], tmp_path: Path
) -> None:
    url, settings, api = live_world
    started = datetime.now(UTC)
    simulator = FanSimulator(
        api, url, settings, operator_id=str(uuid.uuid4()), seed=3,
        pace=Pace(events_per_second=10, vote_every=0.3, follow_every=0.4, notify_every=0.5,
                  show_start_every=1.0, fans=40),
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(simulator.run(stopping=stop.is_set))
    db = Database(url, max_size=2)
    await db.open()
    try:
        async with httpx.AsyncClient(base_url=api) as client:

            async def live_moved() -> dict[str, Any] | None:
                live = (await client.get("/api/analytics/live")).json()
                counts = live["events_last_hour"]
                moved = (
                    live["concurrent_users"] >= 3 and live["active_sessions"] >= 3
                    and live["votes_last_hour"] >= 2 and counts.get("follow", 0) >= 1
                    and counts.get("show_view", 0) >= 1 and live["active_shows"]
                )  # fmt: skip
                return live if moved else None

            live = await until(live_moved, "live users, sessions, votes, follows and shows")
        assert live["status"] == "ok"

        async def rows_written() -> dict[str, Any] | None:
            row = await db.fetch_one(
                """SELECT
                     (SELECT count(*) FROM app.setlist_votes WHERE created_at >= %(t)s) AS votes,
                     (SELECT count(*) FROM app.follows WHERE created_at >= %(t)s) AS follows,
                     (SELECT count(*) FROM notify.notifications
                      WHERE created_at >= %(t)s AND type = 'show_reminder') AS reminders""",
                {"t": started},
            )  # fmt: skip
            done = row and row["votes"] >= 2 and row["follows"] >= 1 and row["reminders"] >= 1
            return row if done else None

        await until(rows_written, "votes, follows and a show reminder in the database")
        assert simulator.stats.failures == 0, simulator.stats.last_failure
        assert simulator.stats.shows_started >= 1
        stop.set()  # the API is shutting down: the simulation ends by itself
        await asyncio.wait_for(task, timeout=30)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()
    assert task.exception() is None
