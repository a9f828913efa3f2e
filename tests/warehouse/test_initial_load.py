"""A fresh install: the first scheduled tick loads the past (a daily run), not only today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from mysetlist.warehouse import pipeline
from mysetlist.warehouse.config import EtlConfig
from tests.warehouse.conftest import one, today

pytestmark = pytest.mark.db


async def test_first_scheduled_tick_runs_the_initial_daily_load(wh_url: str) -> None:
    url, config = wh_url, EtlConfig(parallelism=1)
    users = [f"00000000-0000-4000-8000-00000000000{i}" for i in (1, 2)]
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        for user in users:
            conn.execute(
                "INSERT INTO app.users (id, display_name, created_at) VALUES (%s, 'u', %s)",
                (user, now - timedelta(days=10)),
            )
        # two events a day for the last five days, today included (at midnight: never in
        # the future, whenever the test runs)
        midnight = datetime.combine(today(), datetime.min.time(), tzinfo=UTC)
        conn.execute(
            """INSERT INTO analytics.user_events (user_id, event_type, page_url, created_at)
               SELECT u::uuid, 'page_view', '/p', %s::timestamptz - d * interval '1 day'
                 FROM unnest(%s::text[]) u, generate_series(0, 4) d""",
            (midnight, users),
        )
    assert await pipeline.initial_load_pending(url, config)

    initial = await pipeline.run_scheduled_incremental(url, config)
    assert initial is not None
    assert (initial.status, initial.checks_status) == ("succeeded", "passed")
    assert (initial.from_day, initial.to_day) == (
        today() - timedelta(days=4),
        today() - timedelta(days=1),
    )
    mode, trigger = one(url, "SELECT mode, trigger FROM analytics.etl_runs WHERE id = %s",
                        (initial.run_id,))  # fmt: skip
    assert (mode, trigger) == ("daily", "schedule")
    assert not await pipeline.initial_load_pending(url, config)

    # the next tick is the usual incremental run for today, and then there is nothing to do
    follow = await pipeline.run_scheduled_incremental(url, config)
    assert follow is not None
    assert (follow.status, follow.checks_status) == ("succeeded", "passed")
    # (its first window starts yesterday: events received now with yesterday's time count)
    assert (follow.from_day, follow.to_day) == (today() - timedelta(days=1), today())
    assert await pipeline.run_scheduled_incremental(url, config) is None
    days = "SELECT count(DISTINCT day) FROM analytics.daily_user_stats"
    assert one(url, days) == (5,)
