"""Notification preferences: a category x channel matrix, digest frequency per category,
quiet hours in the user's IANA time zone and a global mute (never for transactional).

A user without a stored row has the defaults, which follow the spec's feature flags
(`emailNotifications: true`, `pushNotifications: false`); marketing email is opt-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mysetlist.core.time_zones import zone_or_utc
from mysetlist.notify.catalog import (
    CATEGORIES,
    CHANNELS,
    DIGEST_FREQUENCIES,
    TRANSACTIONAL_CATEGORIES,
)
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.preferences.api_models import (
    ChannelMatrixUpdate,
    DigestUpdate,
    PreferencesRead,
    PreferencesUpdate,
)


@dataclass
class Preferences:
    channels: dict[str, dict[str, bool]]
    digest: dict[str, str]
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "UTC"
    muted: bool = False
    stored_timezone: str | None = field(default=None, repr=False)

    def allows(self, category: str, channel: str) -> bool:
        if category in TRANSACTIONAL_CATEGORIES:
            return True
        if self.muted:
            return False
        return self.channels.get(category, {}).get(channel, False)

    def digest_of(self, category: str) -> str:
        if category in TRANSACTIONAL_CATEGORIES or category == "digests":
            return "immediate"
        return self.digest.get(category, "immediate")

    def read(self) -> PreferencesRead:
        quiet = (
            {"start": self.quiet_start.strftime("%H:%M"), "end": self.quiet_end.strftime("%H:%M")}
            if self.quiet_start is not None and self.quiet_end is not None
            else None
        )
        return PreferencesRead.model_validate({
            "channels": self.channels,
            "digest": {c: self.digest_of(c) for c in CATEGORIES},
            "quietHours": quiet,
            "timezone": self.timezone,
            "muted": self.muted,
            "transactionalCategories": list(TRANSACTIONAL_CATEGORIES),
        })  # fmt: skip


def default_channels(settings: NotifySettings) -> dict[str, dict[str, bool]]:
    matrix = {}
    for category in CATEGORIES:
        email = settings.email_notifications and category != "marketing"
        matrix[category] = {
            "email": email or category in TRANSACTIONAL_CATEGORIES,
            "push": settings.push_notifications and category != "marketing",
            "in_app": True,
        }
    return matrix


def from_row(
    row: dict[str, Any] | None, settings: NotifySettings, profile_timezone: str
) -> Preferences:
    """Preferences from a stored row (None: defaults), over the defaults. A stored zone
    that is not valid (stored before the check existed, or written around it) is ignored:
    the profile's zone applies, else UTC; it must never fail the work reading it."""
    channels = default_channels(settings)
    if row is None:
        return Preferences(channels, {}, timezone=zone_or_utc(profile_timezone))
    for category, per_channel in (row.get("channels") or {}).items():
        if category in channels:
            channels[category].update({k: bool(v) for k, v in per_channel.items() if k in CHANNELS})
    for category in TRANSACTIONAL_CATEGORIES:
        channels[category]["email"] = True
    stored = row.get("timezone")
    valid_stored = stored if stored is not None and zone_or_utc(stored) == stored else None
    return Preferences(
        channels,
        {c: f for c, f in (row.get("digest") or {}).items() if f in DIGEST_FREQUENCIES},
        row.get("quiet_hours_start"),
        row.get("quiet_hours_end"),
        valid_stored or zone_or_utc(profile_timezone),
        bool(row.get("muted")),
        valid_stored,
    )


def _clock(value: str) -> time:
    return datetime.strptime(value, "%H:%M").time()


def apply_update(current: Preferences, update: PreferencesUpdate) -> Preferences:
    """`current` with the fields the update gives. The update is already valid (its model
    names each bad field in a 422), so this only merges."""
    given = update.model_fields_set
    channels = {c: dict(v) for c, v in current.channels.items()}
    for category, switches in update.channels or ChannelMatrixUpdate():
        if switches is not None:
            for channel, enabled in switches.model_dump(exclude_none=True).items():
                channels.setdefault(category, {})[channel] = enabled
    digest = dict(current.digest)
    for category, frequency in update.digest or DigestUpdate():
        if frequency is not None:
            digest[category] = str(frequency)
    quiet_start, quiet_end = current.quiet_start, current.quiet_end
    if "quietHours" in given:
        quiet = update.quietHours
        quiet_start, quiet_end = (
            (None, None) if quiet is None else (_clock(quiet.start), _clock(quiet.end))
        )
    timezone, stored_timezone = current.timezone, current.stored_timezone
    if update.timezone is not None:
        timezone = stored_timezone = update.timezone
    muted = current.muted if update.muted is None else update.muted
    return Preferences(channels, digest, quiet_start, quiet_end, timezone, muted, stored_timezone)


# -- time at the user's edge ---------------------------------------------------------------


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """`day` at wall-clock `clock` in `zone`, as an aware UTC instant. A wall time skipped by
    a DST change (02:30 on a spring-forward night) becomes the first instant after the gap."""
    naive = datetime.combine(day, clock)
    aware = naive.replace(tzinfo=zone)
    # Round-tripping through UTC moves a non-existent local time past the gap.
    return aware.astimezone(ZoneInfo("UTC"))


def quiet_hours_end(prefs: Preferences, now: datetime) -> datetime | None:
    """When the user's quiet hours that contain `now` end (UTC), or None outside them."""
    if prefs.quiet_start is None or prefs.quiet_end is None:
        return None
    zone = ZoneInfo(prefs.timezone)
    local = now.astimezone(zone)
    clock, today = local.time().replace(tzinfo=None), local.date()
    start, end = prefs.quiet_start, prefs.quiet_end
    if start < end:  # same-day window, e.g. 13:00-15:00
        inside = start <= clock < end
        end_day = today
    else:  # across midnight, e.g. 22:00-07:00
        inside = clock >= start or clock < end
        end_day = today + timedelta(days=1) if clock >= start else today
    if not inside:
        return None
    return _local(end_day, end, zone)


def last_local_midnight(timezone: str, now: datetime) -> datetime:
    """The start of the user's local day containing `now` (UTC)."""
    zone = ZoneInfo(timezone)
    return _local(now.astimezone(zone).date(), time(0, 0), zone)


def next_local_midnight(timezone: str, now: datetime) -> datetime:
    zone = ZoneInfo(timezone)
    return _local(now.astimezone(zone).date() + timedelta(days=1), time(0, 0), zone)


def digest_period(frequency: str, timezone: str, now: datetime) -> tuple[date, datetime]:
    """The user-local period a digest item belongs to and when its digest is due (the
    period's end): daily = the local day, weekly = the local ISO week (Monday first)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if frequency == "daily":
        return today, _local(today + timedelta(days=1), time(0, 0), zone)
    monday = today - timedelta(days=today.weekday())
    return monday, _local(monday + timedelta(days=7), time(0, 0), zone)
