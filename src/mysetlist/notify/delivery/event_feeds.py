"""Notifications produced from the data by jobs, through the same send pipeline as the API:

- a vote-result summary to each voter once a show's actual setlist is entered;
- a reminder `NOTIFY_SHOW_REMINDER_HOURS` before a followed artist's show, naming the start
  in the user's time zone;
- a new-show announcement to the artist's followers.

Each notification carries a dedup key per (kind, show) that the notifications table keeps
unique per user, and the queries skip users who already have it: a re-run sends nothing
twice, and a user who votes or follows after a run is picked up by the next one.
Recipients with the same variables share one send (the variables are per request).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_all_in, read_sql
from mysetlist.core.time_zones import load_time_zones, zone_or_utc
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.delivery import sending

_PACKAGE = "mysetlist.notify.delivery"
# The caller recorded on the send requests these jobs make.
FEEDS_CALLER = str(uuid.uuid5(uuid.NAMESPACE_URL, "mysetlist:notify:event-feeds"))
_CLAIMS = Claims(user_id=FEEDS_CALLER, role="service_role", is_admin=False, raw={})


async def _candidates(db: Database, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        return await fetch_all_in(conn, read_sql(_PACKAGE, sql), params)


async def _send_groups(
    db: Database, settings: NotifySettings, now: datetime,
    groups: dict[tuple[Any, ...], list[str]], build: Any,
) -> int:  # fmt: skip
    """One send per group of users with the same request; the notifications created."""
    created = 0
    for key, user_ids in groups.items():
        for start in range(0, len(user_ids), sending.MAX_RECIPIENTS):
            chunk = [uuid.UUID(u) for u in user_ids[start : start + sending.MAX_RECIPIENTS]]
            request: sending.SendRequest = build(key, chunk)
            result, _ = await sending.send(
                db, settings, _CLAIMS, request, idempotency_key=None, now=now
            )
            created += int(result["notifications"])
    return created


def _grouped(rows: Iterable[dict[str, Any]], key: Any) -> dict[tuple[Any, ...], list[str]]:
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(str(row["user_id"]))
    return groups


def _show_url(settings: NotifySettings, show_id: int) -> str:
    return f"{settings.app_url.rstrip('/')}/shows/{show_id}"


async def vote_summaries(db: Database, settings: NotifySettings, now: datetime) -> int:
    rows = await _candidates(
        db, "feed_vote_summaries.sql", {"now": now, "lookback_days": settings.feed_lookback_days}
    )
    groups = _grouped(rows, lambda r: (r["show_id"], r["artist_name"], r["venue_name"],
                                       r["total_votes"], r["correct_votes"]))  # fmt: skip

    def build(key: tuple[Any, ...], users: list[uuid.UUID]) -> sending.SendRequest:
        show_id, artist, venue, total, correct = key
        percentage = round(100 * correct / total) if total else 0
        return sending.SendRequest(
            userIds=users, type="vote_summary",
            title=f"Your predictions for {artist} at {venue}",
            message=f"{correct} of your {total} predicted songs were played ({percentage}%).",
            data={"showId": show_id}, dedupKey=f"vote_summary:show:{show_id}",
            variables={"accuracy_percentage": percentage, "total_votes": total},
        )  # fmt: skip

    return await _send_groups(db, settings, now, groups, build)


def reminder_text(starts_at: datetime, timezone: str, now: datetime) -> str:
    """When the show starts, in the user's time zone ("today at 20:00 (Europe/Berlin)")."""
    timezone = zone_or_utc(timezone)
    zone = ZoneInfo(timezone)
    local = starts_at.astimezone(zone)
    today = now.astimezone(zone).date()
    days = (local.date() - today).days
    day = {0: "today", 1: "tomorrow"}.get(days, local.strftime("on %A %d %B"))
    return f"{day} at {local:%H:%M} ({timezone})"


async def show_reminders(db: Database, settings: NotifySettings, now: datetime) -> int:
    await load_time_zones(db)
    rows = await _candidates(
        db, "feed_show_reminders.sql", {"now": now, "hours": settings.show_reminder_hours}
    )

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        when = reminder_text(r["starts_at"], r["timezone"], now)
        return (r["show_id"], r["artist_name"], r["venue_name"], when)

    groups = _grouped(rows, key)

    def build(key: tuple[Any, ...], users: list[uuid.UUID]) -> sending.SendRequest:
        show_id, artist, venue, when = key
        return sending.SendRequest(
            userIds=users, type="show_reminder",
            title=f"{artist} plays {when}", message=f"{artist} at {venue} {when}.",
            data={"showId": show_id}, dedupKey=f"show_reminder:show:{show_id}",
            variables={"artist_name": artist, "reminder_text": when,
                       "show_url": _show_url(settings, show_id)},
        )  # fmt: skip

    return await _send_groups(db, settings, now, groups, build)


async def new_show_announcements(db: Database, settings: NotifySettings, now: datetime) -> int:
    rows = await _candidates(
        db, "feed_new_shows.sql", {"now": now, "lookback_days": settings.feed_lookback_days}
    )
    groups = _grouped(
        rows, lambda r: (r["show_id"], r["artist_name"], r["venue_name"], r["show_date"])
    )

    def build(key: tuple[Any, ...], users: list[uuid.UUID]) -> sending.SendRequest:
        show_id, artist, venue, date = key
        shown = date.strftime("%A %d %B %Y")
        return sending.SendRequest(
            userIds=users, type="new_show_announced",
            title=f"{artist} announced a show", message=f"{artist} at {venue}, {shown}.",
            data={"showId": show_id}, dedupKey=f"new_show:show:{show_id}",
            variables={"artist_name": artist, "venue_name": venue, "show_date": shown,
                       "show_url": _show_url(settings, show_id)},
        )  # fmt: skip

    return await _send_groups(db, settings, now, groups, build)


async def run_all(db: Database, settings: NotifySettings, now: datetime | None = None) -> int:
    """Every feed once; the notifications created."""
    now = now or datetime.now(UTC)
    return (
        await vote_summaries(db, settings, now)
        + await show_reminders(db, settings, now)
        + await new_show_announcements(db, settings, now)
    )
