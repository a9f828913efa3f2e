"""The session-level churn features on a hand-built warehouse (two fans, real PostgreSQL):
their values as of a day, and that nothing after that day changes them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from mysetlist.core.db import Database
from mysetlist.ml.features.feature_store import build_range
from tests.conftest import Servers, migrated_database

pytestmark = pytest.mark.db

AS_OF = date(2026, 3, 31)
SIGNUP = AS_OF - timedelta(days=29)  # tenure 29 days: 30 days observed
FADING = uuid.UUID("00000000-0000-7000-8000-000000000001")  # one session a day, then silent
STEADY = uuid.UUID("00000000-0000-7000-8000-000000000002")  # one session a day to the end
SESSION_COLUMNS = (
    "sessions_3", "sessions_7", "sessions_56", "session_rate", "session_ratio_3",
    "session_ratio_7", "session_ratio_14", "session_decline_14", "hours_since_last_event",
    "silence_log_probability",
)  # fmt: skip


def _add_days(conn: psycopg.Connection[Any], user: uuid.UUID, first: date, last: date) -> None:
    """One session a day on [first, last], its last event at 18:00 UTC."""
    day = first
    while day <= last:
        last_event = datetime.combine(day, time(18), tzinfo=UTC)
        conn.execute(
            "INSERT INTO analytics.daily_user_stats (day, user_id, events, page_views,"
            " unique_pages, event_types, sessions, session_seconds, artist_views, show_views,"
            " searches, vote_events, votes, follows, unfollows, shares, notification_opens,"
            " notification_clicks, first_event_at, last_event_at)"
            " VALUES (%s, %s, 3, 2, 1, 2, 1, 300, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, %s, %s)",
            (day, user, last_event - timedelta(minutes=5), last_event),
        )
        day += timedelta(days=1)


@pytest.fixture(scope="module")
def warehouse(servers: Servers) -> Iterator[str]:
    with migrated_database(servers.admin_url, "mysetlist_ml_sessions") as url:
        with psycopg.connect(url) as conn:
            for user in (FADING, STEADY):
                conn.execute(
                    "INSERT INTO app.users (id, display_name, created_at) VALUES (%s, 'fan', %s)",
                    (user, datetime.combine(SIGNUP, time(9), tzinfo=UTC)),
                )
            _add_days(conn, FADING, SIGNUP, AS_OF - timedelta(days=10))
            _add_days(conn, STEADY, SIGNUP, AS_OF)
        yield url


async def _features(url: str) -> dict[uuid.UUID, dict[str, Any]]:
    db = Database(url, max_size=2)
    await db.open()
    try:
        await build_range(db, [AS_OF], advance=False)
    finally:
        await db.close()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT * FROM analytics.ml_user_features WHERE as_of = %s", (AS_OF,)
        ).fetchall()
    return {row["user_id"]: row for row in rows}


async def test_a_fan_who_stopped_shows_fewer_sessions_than_usual_and_an_unlikely_silence(
    warehouse: str,
) -> None:
    rows = await _features(warehouse)
    fading, steady = rows[FADING], rows[STEADY]
    # 20 sessions over the 30 days observed (signup day included), none in the last 9.
    rate = 20 / 30
    assert (fading["sessions_3"], fading["sessions_7"], fading["sessions_56"]) == (0, 0, 20)
    assert fading["session_rate"] == pytest.approx(rate)
    assert fading["session_ratio_3"] == pytest.approx(0.5 / (rate * 3 + 0.5))
    assert fading["session_ratio_7"] == pytest.approx(0.5 / (rate * 7 + 0.5))
    # the last 14 days hold 4 sessions (ages 13, 12, 11, 10)
    assert fading["session_ratio_14"] == pytest.approx(4.5 / (rate * 14 + 0.5))
    assert fading["session_decline_14"] == pytest.approx((6.5 + 5.5 + 4.5 + 3.5) / 227.5 / rate)
    # last event 18:00 ten days before AS_OF; the window ends at midnight after AS_OF
    hours = 10 * 24 + 6
    assert fading["hours_since_last_event"] == pytest.approx(hours)
    assert fading["silence_log_probability"] == pytest.approx(
        20.5 * math.log(32 / (32 + hours / 24))
    )
    # A fan who kept coming: as many sessions as usual, no decline, a silence of 6 hours.
    assert (steady["sessions_3"], steady["sessions_7"], steady["sessions_56"]) == (3, 7, 30)
    assert steady["session_rate"] == pytest.approx(1.0)
    for k in (3, 7, 14):
        assert steady[f"session_ratio_{k}"] == pytest.approx(1.0)
    assert steady["session_decline_14"] == pytest.approx(0.0)
    assert steady["hours_since_last_event"] == pytest.approx(6)
    assert steady["silence_log_probability"] == pytest.approx(30.5 * math.log(32 / (32 + 0.25)))
    assert fading["silence_log_probability"] < steady["silence_log_probability"]


async def test_activity_after_the_day_changes_none_of_its_session_features(
    warehouse: str,
) -> None:
    before = await _features(warehouse)
    with psycopg.connect(warehouse) as conn:
        _add_days(conn, FADING, AS_OF + timedelta(days=1), AS_OF + timedelta(days=3))
        _add_days(conn, STEADY, AS_OF + timedelta(days=1), AS_OF + timedelta(days=1))
    try:
        after = await _features(warehouse)
    finally:
        with psycopg.connect(warehouse) as conn:
            conn.execute("DELETE FROM analytics.daily_user_stats WHERE day > %s", (AS_OF,))
    assert set(after) == set(before) == {FADING, STEADY}
    for user in (FADING, STEADY):
        assert {c: after[user][c] for c in SESSION_COLUMNS} == {
            c: before[user][c] for c in SESSION_COLUMNS
        }
