"""The feature store: a cut-off's features never see the future, the build follows the
ETL's watermark, and rebuilding a day changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from mysetlist.core.db import Database
from mysetlist.core.watermarks import read_watermark
from mysetlist.demo.world import WorldSpec
from mysetlist.ml.features.feature_store import (
    FEATURE_SQL,
    WATERMARK,
    build_pending,
    build_range,
)
from tests.conftest import Servers, migrated_database
from tests.ml.user_model_world import LAST_DAY, World, build, load_warehouse, world_in_warehouse

pytestmark = pytest.mark.db

SPEC = WorldSpec(users=300, days=40, seed=5)
CUT_OFF = LAST_DAY - timedelta(days=12)


def feature_rows(url: str, day: date) -> dict[str, list[tuple[Any, ...]]]:
    """Every feature table's rows as of `day`, in a stable order."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(
                conn.execute(f"SELECT * FROM analytics.{table} WHERE as_of = %s", (day,)),
                key=repr,
            )
            for table in FEATURE_SQL
        }


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    async with world_in_warehouse(servers.admin_url, SPEC) as built:
        yield built


async def test_features_for_a_cut_off_are_the_same_whether_or_not_later_events_exist(
    servers: Servers, world: World
) -> None:
    # The same world (same seed and present: identical rows) with nothing after the
    # cut-off: no events, votes or follows, and a warehouse loaded up to the cut-off.
    with migrated_database(servers.admin_url, "mysetlist_ml_past") as url:
        first_day = build(url, SPEC)
        after = (CUT_OFF + timedelta(days=1)).isoformat()
        with psycopg.connect(url) as conn:
            for table in ("analytics.user_events", "app.setlist_votes", "app.follows"):
                conn.execute(f"DELETE FROM {table} WHERE created_at >= %s::date", (after,))
        await load_warehouse(url, first_day, CUT_OFF)
        db = Database(url, max_size=2)
        await db.open()
        try:
            await build_range(db, [CUT_OFF])
        finally:
            await db.close()
        without_future = feature_rows(url, CUT_OFF)

    await build_range(world.db, [CUT_OFF], advance=False)
    with_future = feature_rows(world.url, CUT_OFF)

    assert all(without_future[t] for t in FEATURE_SQL), "every table has rows at the cut-off"
    assert with_future == without_future
    # The later events are there, and a later day's features do see them.
    await build_range(world.db, [LAST_DAY], advance=False)
    later = feature_rows(world.url, LAST_DAY)["ml_user_features"]
    assert later != with_future["ml_user_features"]


async def test_the_build_follows_the_etl_watermark_and_a_rebuild_changes_nothing(
    world: World,
) -> None:
    async with world.db.transaction() as conn:
        await conn.execute("DELETE FROM analytics.watermarks WHERE name = %s", (WATERMARK,))
    first = await build_pending(world.db, backfill_days=10, lookback_days=2)
    # A first build backfills up to the last day the ETL closed.
    assert first.days == [LAST_DAY - timedelta(days=9 - i) for i in range(10)]
    assert all(n > 0 for n in first.rows.values())
    async with world.db.transaction() as conn:
        built = await read_watermark(conn, WATERMARK)
    assert built is not None
    assert built.last_full_day == LAST_DAY
    # Nothing new from the ETL: nothing to build.
    assert (await build_pending(world.db, backfill_days=10, lookback_days=2)).days == []
    # Rebuilding a day (the lookback does) is idempotent.
    before = feature_rows(world.url, LAST_DAY)
    await build_range(world.db, [LAST_DAY], advance=False)
    assert feature_rows(world.url, LAST_DAY) == before
