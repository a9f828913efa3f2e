"""The feature store: a cut-off's features never see the future, the build follows the
ETL's watermark, and rebuilding a day changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
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


def _id_of(properties: Any, key: str) -> int | None:
    """`(properties ->> key)::bigint` when the text is 1-18 digits, as the SQL reads it."""
    value = properties.get(key) if isinstance(properties, dict) else None
    if value is None or isinstance(value, bool):
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def recommendation_rows_in_python(url: str, day: date) -> list[tuple[Any, ...]]:
    """user_recommendation_features as of `day`, by the definition in
    recommendation_features.sql's header, computed from plain reads."""
    window_start = datetime.combine(day - timedelta(days=27), time(), UTC)
    cut_off = datetime.combine(day + timedelta(days=1), time(), UTC)
    with psycopg.connect(url) as conn:
        shows: dict[int, int] = dict(conn.execute("SELECT id, artist_id FROM app.shows").fetchall())
        artists = {r[0] for r in conn.execute("SELECT id FROM app.artists")}
        events = conn.execute(
            "SELECT user_id, event_type, created_at, properties FROM analytics.user_events"
            " WHERE user_id IS NOT NULL AND event_type IN"
            " ('follow', 'unfollow', 'artist_view', 'show_view')"
        ).fetchall()
        votes = conn.execute(
            "SELECT v.user_id, v.show_id, v.created_at FROM app.setlist_votes v"
        ).fetchall()
    interactions: list[tuple[Any, str, datetime, int | None]] = []
    for user_id, kind, created_at, properties in events:
        if created_at >= cut_off:
            continue
        if kind in ("artist_view", "show_view") and created_at < window_start:
            continue
        if kind == "show_view":
            show_id = _id_of(properties, "show_id")
            artist = shows.get(show_id) if show_id is not None else None
        else:
            artist = _id_of(properties, "artist_id")
        interactions.append((user_id, kind, created_at, artist))
    for user_id, show_id, created_at in votes:
        if window_start <= created_at < cut_off and show_id in shows:
            interactions.append((user_id, "vote", created_at, shows[show_id]))
    groups: dict[tuple[Any, int], list[tuple[str, datetime]]] = {}
    for user_id, kind, created_at, artist in interactions:
        if artist is not None and artist in artists:
            groups.setdefault((user_id, artist), []).append((kind, created_at))
    rows = []
    for (user_id, artist), items in groups.items():
        follows = sum({"follow": 1, "unfollow": -1}.get(k, 0) for k, _ in items) > 0
        recent = [at for _, at in items if at >= window_start]
        if not follows and not any(at >= window_start and k != "unfollow" for k, at in items):
            continue
        counts = {k: sum(1 for kind, _ in items if kind == k) for k in ("artist_view", "show_view")}
        votes_28 = sum(1 for k, _ in items if k == "vote")
        last = max(recent).astimezone(UTC).date() if recent else None
        rows.append(
            (
                day,
                user_id,
                artist,
                follows,
                counts["artist_view"],
                counts["show_view"],
                votes_28,
                last,
            )
        )
    return sorted(rows, key=repr)


async def test_recommendation_features_match_their_definition(world: World) -> None:
    # The SQL reads follows and views in two index-friendly branches (tracking migration
    # 0011); its rows must be the plain definition's, at a cut-off and at the last day.
    for day in (CUT_OFF, LAST_DAY):
        await build_range(world.db, [day], advance=False)
        with psycopg.connect(world.url) as conn:
            built = sorted(
                conn.execute(
                    "SELECT as_of, user_id, artist_id, follows, artist_views_28, show_views_28,"
                    " votes_28, last_interaction FROM analytics.user_recommendation_features"
                    " WHERE as_of = %s",
                    (day,),
                ),
                key=repr,
            )
        expected = recommendation_rows_in_python(world.url, day)
        assert any(row[3] for row in expected), "some standing follows"
        assert built == expected
