"""Notifications fed by the data: vote summaries once a setlist is entered, reminders before
a followed artist's show in each user's time zone, new-show announcements. A re-run sends
nothing twice; a voter or follower who comes later is picked up by the next run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.notify.delivery import event_feeds
from mysetlist.notify.delivery.drain import Deliverer
from tests.notify.conftest import SmtpSink, body_of, notify_settings

pytestmark = pytest.mark.db


async def world(runtime: Runtime, *starts: datetime) -> dict[str, Any]:
    """An artist with songs, a venue and shows starting at `starts`."""
    name = f"Band {uuid.uuid4().hex[:6]}"
    async with runtime.db.transaction() as conn:
        cur = await conn.execute("INSERT INTO app.artists (name) VALUES (%s) RETURNING id", (name,))
        artist = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            """INSERT INTO app.venues (name, city, country, timezone)
               VALUES ('The Hall', 'Berlin', 'DE', 'Europe/Berlin') RETURNING id"""
        )
        venue = (await cur.fetchone())[0]  # type: ignore[index]
        songs = []
        for i in range(4):
            cur = await conn.execute(
                "INSERT INTO app.songs (artist_id, title) VALUES (%s, %s) RETURNING id",
                (artist, f"Song {i}"),
            )
            songs.append((await cur.fetchone())[0])  # type: ignore[index]
        shows = []
        for at in starts:
            cur = await conn.execute(
                """INSERT INTO app.shows (artist_id, venue_id, starts_at)
                   VALUES (%s, %s, %s) RETURNING id""",
                (artist, venue, at),
            )
            shows.append((await cur.fetchone())[0])  # type: ignore[index]
    return {"artist": artist, "name": name, "songs": songs, "shows": shows}


async def execute(runtime: Runtime, sql: str, rows: list[tuple[Any, ...]]) -> None:
    async with runtime.db.transaction() as conn:
        for row in rows:
            await conn.execute(sql, row)


async def notifications(runtime: Runtime, dedup_key: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT user_id, title, variables FROM notify.notifications WHERE dedup_key = %s",
        (dedup_key,),
    )


async def test_vote_summaries_once_per_voter_after_the_setlist_is_entered(
    runtime: Runtime, make_users: Any, deliverer: Deliverer, smtp_sink: SmtpSink
) -> None:
    now = datetime.now(UTC)
    w = await world(runtime, now - timedelta(days=1), now - timedelta(days=2))
    played, unentered = w["shows"]
    s = w["songs"]
    two_of_three, all_right, other_show, late = await make_users(4)
    vote = "INSERT INTO app.setlist_votes (user_id, show_id, song_id) VALUES (%s, %s, %s)"
    await execute(runtime, vote, [
        (two_of_three.id, played, s[0]), (two_of_three.id, played, s[1]),
        (two_of_three.id, played, s[3]), (all_right.id, played, s[0]),
        (other_show.id, unentered, s[0]),
    ])  # fmt: skip
    await execute(
        runtime, "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, %s, %s)",
        [(played, 1, s[0]), (played, 2, s[1]), (played, 3, s[2])],
    )  # fmt: skip
    settings = notify_settings(smtp_sink.port)

    # The module's database holds only this module's shows: exactly our two voters.
    assert await event_feeds.vote_summaries(runtime.db, settings, now) == 2
    assert await event_feeds.vote_summaries(runtime.db, settings, now) == 0  # a re-run
    await deliverer.drain(runtime.db)
    (mail,) = smtp_sink.to(two_of_three.email)
    html = body_of(mail)
    assert "Accuracy Rate: 67%" in html
    assert "Total Votes: 3" in html
    (mail,) = smtp_sink.to(all_right.email)
    assert "Accuracy Rate: 100%" in body_of(mail)
    assert smtp_sink.to(other_show.email) == []  # that show has no setlist yet

    # A later voter gets theirs on the next run; nobody else gets a second one.
    await execute(runtime, vote, [(late.id, played, s[2])])
    assert await event_feeds.vote_summaries(runtime.db, settings, now) == 1
    await deliverer.drain(runtime.db)
    assert len(smtp_sink.to(late.email)) == 1
    assert len(smtp_sink.to(two_of_three.email)) == 1
    rows = await notifications(runtime, f"vote_summary:show:{played}")
    assert len(rows) == 3


async def test_show_reminders_name_the_start_in_each_users_time_zone(
    runtime: Runtime, make_users: Any, smtp_sink: SmtpSink
) -> None:
    now = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    w = await world(runtime, datetime(2026, 7, 1, 19, 0, tzinfo=UTC), now + timedelta(days=2))
    soon, later = w["shows"]
    (new_york,) = await make_users(1, timezone="America/New_York")
    (berlin,) = await make_users(1, timezone="Europe/Berlin")
    (tokyo,) = await make_users(1, timezone="Asia/Tokyo")
    (not_following,) = await make_users(1)
    follow = "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)"
    await execute(runtime, follow, [(u.id, w["artist"]) for u in (new_york, berlin, tokyo)])
    settings = notify_settings(smtp_sink.port, NOTIFY_SHOW_REMINDER_HOURS=24)

    assert await event_feeds.show_reminders(runtime.db, settings, now) == 3
    assert await event_feeds.show_reminders(runtime.db, settings, now) == 0
    rows = await notifications(runtime, f"show_reminder:show:{soon}")
    texts = {str(r["user_id"]): r["variables"]["reminder_text"] for r in rows}
    assert texts == {
        new_york.id: "today at 15:00 (America/New_York)",
        berlin.id: "today at 21:00 (Europe/Berlin)",
        tokyo.id: "tomorrow at 04:00 (Asia/Tokyo)",
    }
    assert not_following.id not in texts
    assert await notifications(runtime, f"show_reminder:show:{later}") == []  # not yet due
    # A day and a half on, the later show is due; the first one (started) is not reminded again.
    next_day = now + timedelta(days=1, hours=12)
    assert await event_feeds.show_reminders(runtime.db, settings, next_day) == 3
    assert len(await notifications(runtime, f"show_reminder:show:{later}")) == 3
    assert len(await notifications(runtime, f"show_reminder:show:{soon}")) == 3


async def test_new_show_announcements_to_followers_once(
    runtime: Runtime, make_users: Any, smtp_sink: SmtpSink
) -> None:
    now = datetime.now(UTC)
    w = await world(runtime, now + timedelta(days=30))
    (show,) = w["shows"]
    fan, other_fan, stranger = await make_users(3)
    follow = "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)"
    await execute(runtime, follow, [(fan.id, w["artist"]), (other_fan.id, w["artist"])])
    settings = notify_settings(smtp_sink.port)

    assert await event_feeds.new_show_announcements(runtime.db, settings, now) == 2
    assert await event_feeds.new_show_announcements(runtime.db, settings, now) == 0
    rows = await notifications(runtime, f"new_show:show:{show}")
    assert {str(r["user_id"]) for r in rows} == {fan.id, other_fan.id}
    assert rows[0]["title"] == f"{w['name']} announced a show"
    assert stranger.id not in {str(r["user_id"]) for r in rows}
