"""Warehouse numbers on a tiny world whose every figure is computed by hand below.

B is 30 days ago (UTC), so the freshness check has nothing recent to complain about.
Users: u1 and u2 sign up on B, u3 on B+8 (a later ISO week). Artist 1 has show 1
(completed, actual setlist: songs s1, s2) and show 2 (scheduled, no setlist).

Events (u1 unless noted):
  B    10:00 page_view /a      → session 1 starts
  B    10:20 page_view /b?x=1  → +20 min, same session (page /b)
  B    10:50 artist_view /artist/1 (artist 1) → +30 min exactly: same session
  B    11:21 search /search    → +31 min: session 2
  B    23:50 page_view /a      → session 3
  B    12:00 page_view /a by an anonymous visitor
  B+1  00:10 show_view /show/1 (show 1) → +20 min after 23:50: continues session 3
  B+1  01:00 vote /show/1       → +50 min: session 1 of B+1
  B+2  09:00 follow /artist/1 by u2 (artist 1)
  B+9  12:00 page_view /home
  B+15 12:00 page_view /home by u2
Votes (app.setlist_votes): u1 on B+1 01:00: show 1 s1 (correct), show 1 s3 (wrong),
show 2 s1 (show not happened); u2 on B+2 09:00: show 1 s2 (correct).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.platform import service
from mysetlist.warehouse.config import EtlConfig
from tests.warehouse.conftest import at, one, run_range, table_contents, today

pytestmark = pytest.mark.db

B = today() - timedelta(days=30)
LAST = B + timedelta(days=15)


def d(n: int) -> date:
    return B + timedelta(days=n)


@pytest.fixture(scope="module")
async def world(wh_url: str, runtime: Runtime) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(wh_url) as conn:
        u1 = await service.create_user(conn, runtime.cipher, display_name="u1")
        u2 = await service.create_user(conn, runtime.cipher, display_name="u2")
        u3 = await service.create_user(conn, runtime.cipher, display_name="u3")
        for uid, when in ((u1, at(B, "09:00")), (u2, at(B, "09:30")), (u3, at(d(8), "09:00"))):
            await conn.execute("UPDATE app.users SET created_at = %s WHERE id = %s", (when, uid))
        await conn.execute(
            "INSERT INTO app.artists (id, name, genres) VALUES (1, 'Artist', '{rock,indie}')"
        )
        await conn.execute(
            "INSERT INTO app.venues (id, name, city, country) VALUES (1, 'V', 'C', 'US')"
        )
        await conn.execute(
            """INSERT INTO app.shows (id, artist_id, venue_id, starts_at, status) VALUES
               (1, 1, 1, %s, 'completed'), (2, 1, 1, %s, 'scheduled')""",
            (at(d(3), "20:00"), at(today() + timedelta(days=30), "20:00")),
        )
        await conn.execute(
            "INSERT INTO app.songs (id, artist_id, title)"
            " VALUES (1, 1, 's1'), (2, 1, 's2'), (3, 1, 's3')"
        )
        await conn.execute("INSERT INTO app.setlist_songs VALUES (1, 1, 1), (1, 2, 2)")
        await conn.execute(
            """INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at) VALUES
               (%(u1)s, 1, 1, %(t1)s), (%(u1)s, 1, 3, %(t1)s), (%(u1)s, 2, 1, %(t1)s),
               (%(u2)s, 1, 2, %(t2)s)""",
            {"u1": u1, "u2": u2, "t1": at(d(1), "01:00"), "t2": at(d(2), "09:00")},
        )
        events = [
            (u1, None, "page_view", "/a", {}, at(B, "10:00")),
            (u1, None, "page_view", "/b?x=1", {}, at(B, "10:20")),
            (u1, None, "artist_view", "/artist/1", {"artist_id": 1}, at(B, "10:50")),
            (u1, None, "search", "/search", {"query": "x"}, at(B, "11:21")),
            (u1, None, "page_view", "/a", {}, at(B, "23:50")),
            (None, "anon-1", "page_view", "/a", {}, at(B, "12:00")),
            (u1, None, "show_view", "/show/1", {"show_id": 1}, at(d(1), "00:10")),
            (u1, None, "vote", "/show/1", {"show_id": 1, "song_id": 1}, at(d(1), "01:00")),
            (u2, None, "follow", "/artist/1", {"artist_id": 1}, at(d(2), "09:00")),
            (u1, None, "page_view", "/home", {}, at(d(9), "12:00")),
            (u2, None, "page_view", "/home", {}, at(d(15), "12:00")),
        ]
        from psycopg.types.json import Jsonb

        for user_id, anon, typ, url, props, when in events:
            await conn.execute(
                """INSERT INTO analytics.user_events
                     (user_id, anonymous_id, event_type, page_url, properties, created_at,
                      received_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (user_id, anon, typ, url, Jsonb(props), when, when + timedelta(seconds=1)),
            )
        await conn.commit()
    result = await run_range(wh_url, B, LAST)
    return {"u1": u1, "u2": u2, "u3": u3, "result": result}


def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


async def test_run_succeeds_with_passing_checks(world: dict[str, Any], wh_url: str) -> None:
    result = world["result"]
    assert result.status == "succeeded"
    assert result.checks_status == "passed", rows(
        wh_url, "SELECT name, details FROM analytics.etl_quality_checks WHERE NOT passed"
    )
    assert result.days == 16
    assert one(wh_url, "SELECT count(*) FROM analytics.etl_loaded_days")[0] == 16


async def test_sessions_split_at_30_minutes(world: dict[str, Any], wh_url: str) -> None:
    got = rows(
        wh_url,
        """SELECT day, events, sessions, session_seconds, page_views, unique_pages, event_types,
                  searches, votes, vote_events, follows
             FROM analytics.daily_user_stats WHERE user_id = %s ORDER BY day""",
        (world["u1"],),
    )
    assert got == [
        # 3 sessions (10:00, 11:21, 23:50); 20+30 min inside session 1 = 3000 s;
        # page views: 3 page_view + 1 artist_view; pages /a /b /artist/1 /search
        (B, 5, 3, 3000, 4, 4, 3, 1, 0, 0, 0),
        # 00:10 continues the 23:50 session (20 min = 1200 s); 01:00 starts a new one.
        (d(1), 2, 1, 1200, 1, 1, 2, 0, 3, 1, 0),
        (d(9), 1, 1, 0, 1, 1, 1, 0, 0, 0, 0),
    ]
    u2 = rows(
        wh_url,
        "SELECT day, events, votes, follows FROM analytics.daily_user_stats"
        " WHERE user_id = %s ORDER BY day",
        (world["u2"],),
    )
    assert u2 == [(d(2), 1, 1, 1), (d(15), 1, 0, 0)]


async def test_engagement_score_matches_the_spec_formula(
    world: dict[str, Any], wh_url: str
) -> None:
    got = rows(
        wh_url,
        """SELECT day, session_score, page_view_score, diversity_score, event_type_score,
                  engagement_score
             FROM analytics.user_engagement_warehouse WHERE user_id = %s ORDER BY day""",
        (world["u1"],),
    )
    assert got == [
        # min(3/10,1)*.3 + min(4/100,1)*.3 + min(4/20,1)*.2 + min(3/10,1)*.2
        (B, Decimal("0.09"), Decimal("0.012"), Decimal("0.04"), Decimal("0.06"), Decimal("0.202")),
        # 1 session, 1 page view, 1 page, 2 types
        (
            d(1),
            Decimal("0.03"),
            Decimal("0.003"),
            Decimal("0.01"),
            Decimal("0.04"),
            Decimal("0.083"),
        ),
        (
            d(9),
            Decimal("0.03"),
            Decimal("0.003"),
            Decimal("0.01"),
            Decimal("0.02"),
            Decimal("0.063"),
        ),
    ]
    behavior = one(
        wh_url,
        """SELECT first_active_day, last_active_day, active_days, events, sessions, votes,
                  engagement_score, votes_on_happened_shows, correct_votes, voting_accuracy
             FROM analytics.user_behavior_warehouse WHERE user_id = %s""",
        (world["u1"],),
    )
    # (0.202 + 0.083 + 0.063) / 30 = 0.0116; 2 of 3 votes on the played show, 1 correct.
    assert behavior == (B, d(9), 3, 8, 5, 3, Decimal("0.0116"), 2, 1, Decimal("0.5"))


async def test_voting_accuracy_per_user_show_and_artist(world: dict[str, Any], wh_url: str) -> None:
    got = rows(
        wh_url,
        """SELECT grain, scope_id, votes, votes_on_happened_shows, correct_votes, accuracy
             FROM analytics.voting_patterns_warehouse ORDER BY grain, scope_id""",
    )
    expected = sorted(
        [
            ("artist", "1", 4, 3, 2, Decimal("0.6667")),
            ("show", "1", 3, 3, 2, Decimal("0.6667")),
            ("show", "2", 1, 0, 0, None),  # not happened: no accuracy
            ("user", world["u1"], 3, 2, 1, Decimal("0.5")),
            ("user", world["u2"], 1, 1, 1, Decimal("1")),
        ],
        key=lambda r: (r[0], r[1]),
    )
    assert got == expected


async def test_weekly_cohort_retention(world: dict[str, Any], wh_url: str) -> None:
    got = rows(
        wh_url,
        """SELECT cohort_week, week_number, cohort_size, active_users, retention_rate
             FROM analytics.cohort_retention_weekly ORDER BY 1, 2""",
    )
    week_b = B - timedelta(days=B.weekday())
    week_3 = d(8) - timedelta(days=d(8).weekday())
    # Horizon: the last loaded day is B+15, so cohort B shows weeks 0..2 and the cohort of
    # B+8 weeks 0..1. Cohort B: u1 (active B, B+1, B+9) and u2 (B+2, B+15).
    assert got == [
        (week_b, 0, 2, 2, Decimal("1")),
        (week_b, 1, 2, 1, Decimal("0.5")),  # u1 on B+9
        (week_b, 2, 2, 1, Decimal("0.5")),  # u2 on B+15
        (week_3, 0, 1, 0, Decimal("0")),
        (week_3, 1, 1, 0, Decimal("0")),
    ]


async def test_trending_score_against_own_baseline(world: dict[str, Any], wh_url: str) -> None:
    got = dict(
        (r[0], r[1:])
        for r in rows(
            wh_url,
            """SELECT day, activity, recent_avg, baseline_avg, trending_score
                 FROM analytics.artist_popularity_warehouse WHERE artist_id = 1 ORDER BY day""",
        )
    )
    # activity = views + show_views + 2*votes + 5*follows:
    #   B: 1 artist view = 1; B+1: 1 show view + 3 votes = 7; B+2: 1 vote + 1 follow = 7
    assert [got[B][0], got[d(1)][0], got[d(2)][0]] == [1, 7, 7]
    # B+2: recent (1+7+7)/7 = 2.142857, no baseline: (15/7 + 1) / 1 - 1 = 2.1429
    assert got[d(2)][1:] == (Decimal("2.1429"), Decimal("0"), Decimal("2.1429"))
    # B+8 (a zero-activity row: B+2 is still in its week): recent 7/7 = 1,
    # baseline (1+7)/28 = 0.285714: (1+1) / (1.285714) - 1 = 0.5556
    assert got[d(8)] == (0, Decimal("1"), Decimal("0.2857"), Decimal("0.5556"))
    # B+9: nothing in the last 7 days, so no row.
    assert d(9) not in got
    assert max(got) == d(8)


async def test_platform_metrics_dau_wau_mau(world: dict[str, Any], wh_url: str) -> None:
    got = {
        r[0]: r[1:]
        for r in rows(
            wh_url,
            """SELECT day, events_total, identified_events, anonymous_events, active_users, wau,
                      mau, stickiness, new_users, votes
                 FROM analytics.daily_platform_metrics""",
        )
    }
    assert len(got) == 16  # every day in range, even the empty ones
    assert got[B] == (6, 5, 1, 1, 1, 1, Decimal("1"), 2, 0)
    assert got[d(2)] == (1, 1, 0, 1, 2, 2, Decimal("0.5"), 0, 1)
    assert got[d(8)] == (0, 0, 0, 0, 1, 2, Decimal("0"), 1, 0)  # WAU: u2 (B+2); u3 signs up
    assert got[d(9)] == (1, 1, 0, 1, 1, 2, Decimal("0.5"), 0, 0)
    assert got[d(15)][3:6] == (1, 2, 2)  # WAU B+9..B+15: u1, u2


async def test_users_see_only_their_own_analytics(world: dict[str, Any], wh_url: str) -> None:
    import orjson

    def visible(claims: dict[str, Any]) -> list[tuple[Any, ...]]:
        with psycopg.connect(wh_url) as conn:
            conn.execute(
                "SELECT set_config('request.jwt.claims', %s, true),"
                " set_config('role', 'authenticated', true)",
                (orjson.dumps(claims).decode(),),
            )
            return conn.execute(
                "SELECT user_id::text FROM analytics.user_behavior_warehouse ORDER BY 1"
            ).fetchall()

    assert visible({"sub": world["u1"], "role": "authenticated"}) == [(world["u1"],)]
    everyone = visible(
        {"sub": world["u3"], "role": "authenticated", "app_metadata": {"admin": True}}
    )
    assert sorted(r[0] for r in everyone) == sorted([world["u1"], world["u2"]])


async def test_rerun_changes_nothing(world: dict[str, Any], wh_url: str) -> None:
    before = table_contents(wh_url)
    assert all(before[t] for t in before), [t for t in before if not before[t]]
    again = await run_range(wh_url, B, LAST, config=EtlConfig(parallelism=1))
    assert again.status == "succeeded"
    assert table_contents(wh_url) == before
    # Re-running part of history (--from/--to) also leaves everything as it was.
    part = await run_range(wh_url, d(1), d(2))
    assert (part.status, part.days) == ("succeeded", 2)
    assert table_contents(wh_url) == before


async def test_failed_quality_check_marks_the_run(world: dict[str, Any], wh_url: str) -> None:
    with psycopg.connect(wh_url) as conn:
        conn.execute(
            "DELETE FROM analytics.daily_user_stats WHERE user_id = %s AND day = %s",
            (world["u1"], B),
        )
    checked = await run_range(wh_url, B, LAST, steps=["quality_checks"])
    assert checked.status == "succeeded"
    assert checked.checks_status == "failed"
    assert checked.checks_failed >= 1
    failed = dict(
        rows(
            wh_url,
            "SELECT name, details FROM analytics.etl_quality_checks"
            " WHERE run_id = %s AND NOT passed",
            (checked.run_id,),
        )
    )
    assert "events_reconcile" in failed
    assert failed["events_reconcile"]["mismatched_days"][0]["day"] == B.isoformat()
    assert one(
        wh_url,
        "SELECT checks_status, checks_failed FROM analytics.etl_runs WHERE id = %s",
        (checked.run_id,),
    ) == ("failed", checked.checks_failed)
    # Reloading the day repairs it.
    repaired = await run_range(wh_url, B, B)
    assert repaired.checks_status == "passed"
