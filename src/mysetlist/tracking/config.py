"""Settings of the tracking capability, read from the environment like `core.config`.

They live here rather than in `core.config.Settings` so the capability owns its knobs;
every variable is prefixed `MYSETLIST_` and documented next to its field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mysetlist.core.config import capability_settings

# The platform's own event types (the app's tracker and Segment's page/screen mapping).
PLATFORM_EVENT_TYPES = (
    "page_view", "screen_view", "artist_view", "show_view", "search", "vote", "follow",
    "unfollow", "share", "notification_open", "notification_click",
)  # fmt: skip


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Group commit: at most this many events per transaction, this many waiting in memory
    # (beyond it: 503 + Retry-After), and this many concurrent flushing connections.
    group_commit_max_events: int = Field(
        default=5000, ge=1, validation_alias="MYSETLIST_GROUP_COMMIT_MAX_EVENTS"
    )
    group_commit_max_queue: int = Field(
        default=50_000, ge=1, validation_alias="MYSETLIST_GROUP_COMMIT_MAX_QUEUE"
    )
    group_commit_connections: int = Field(
        default=2, ge=1, le=16, validation_alias="MYSETLIST_GROUP_COMMIT_CONNECTIONS"
    )
    group_commit_linger_ms: float = Field(
        default=0.0, ge=0, le=100, validation_alias="MYSETLIST_GROUP_COMMIT_LINGER_MS"
    )

    # Rate limits (the `limits` library's notation), applied per caller.
    rate_limit_anonymous: str = Field(
        default="300/second", validation_alias="MYSETLIST_RATE_LIMIT_ANONYMOUS"
    )  # per client IP, no token and no write key
    rate_limit_write_key: str = Field(
        default="20000/second", validation_alias="MYSETLIST_RATE_LIMIT_WRITE_KEY"
    )  # per write key (Segment/PostHog sources)
    rate_limit_user: str = Field(default="100/second", validation_alias="MYSETLIST_RATE_LIMIT_USER")
    # Failed write-key checks per client IP (beyond it every write-key call is a 429) count
    # in core's window: MYSETLIST_RATE_LIMIT_AUTH_FAILURES and MYSETLIST_RATE_LIMIT_ENABLED
    # are core settings (`runtime.settings`), one owner per variable.

    # Retention: events (days, and shorter per event type), dedup window, rollups.
    event_retention_days: int = Field(
        default=400, ge=1, validation_alias="MYSETLIST_EVENT_RETENTION_DAYS"
    )
    event_retention_overrides: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, validation_alias="MYSETLIST_EVENT_RETENTION_OVERRIDES"
    )  # JSON or "type=days,type=days"
    partitions_ahead_days: int = Field(
        default=14, ge=7, validation_alias="MYSETLIST_EVENT_PARTITIONS_AHEAD_DAYS"
    )
    dedup_window_days: int = Field(default=7, ge=1, validation_alias="MYSETLIST_DEDUP_WINDOW_DAYS")
    hourly_metrics_retention_hours: int = Field(
        default=24 * 14, ge=1, validation_alias="MYSETLIST_HOURLY_METRICS_RETENTION_HOURS"
    )
    platform_metrics_retention_days: int = Field(
        default=90, ge=1, validation_alias="MYSETLIST_PLATFORM_METRICS_RETENTION_DAYS"
    )
    # Signed anonymous/session ids stop proving possession this long after they were
    # issued or last renewed (POST /api/analytics/anonymous-id with the current token).
    signed_id_ttl_days: float = Field(
        default=30, gt=0, le=400, validation_alias="MYSETLIST_SIGNED_ID_TTL_DAYS"
    )
    # How often each API process reloads the signed ids erasure revoked (an event carrying
    # one is refused from then on; linking and renewal check the table itself).
    signed_id_revocation_refresh_seconds: float = Field(
        default=5.0, gt=0, le=3600,
        validation_alias="MYSETLIST_SIGNED_ID_REVOCATION_REFRESH_SECONDS",
    )  # fmt: skip
    # Event types the public /api/analytics/live names; other (free-text) names count as
    # "other" there. JSON list or comma-separated.
    live_public_event_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(PLATFORM_EVENT_TYPES),
        validation_alias="MYSETLIST_LIVE_PUBLIC_EVENT_TYPES",
    )
    write_key_cache_seconds: float = Field(
        default=30.0, ge=0, validation_alias="MYSETLIST_WRITE_KEY_CACHE_SECONDS"
    )

    @field_validator(
        "rate_limit_anonymous",
        "rate_limit_write_key",
        "rate_limit_user",
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # "100/second", "5000 per minute" …; raises ValueError otherwise
        return value

    @field_validator("live_public_event_types", mode="before")
    @classmethod
    def _parse_types(cls, value: Any) -> Any:
        return _json_or_plain(value, "[", _comma_separated)

    @field_validator("event_retention_overrides", mode="before")
    @classmethod
    def _parse_overrides(cls, value: Any) -> Any:
        return _json_or_plain(value, "{", _days_by_type)


def _json_or_plain(value: Any, json_start: str, plain: Callable[[str], Any]) -> Any:
    """A variable written as JSON (when it starts with `json_start`) or in its plain form."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    return json.loads(text) if text.startswith(json_start) else plain(text)


def _comma_separated(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _days_by_type(text: str) -> dict[str, int]:
    """`type=days,type=days` (empty: none)."""
    pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
    return {k.strip(): int(v) for k, v in pairs}


def load_tracking_settings(**overrides: Any) -> TrackingSettings:
    return capability_settings(TrackingSettings, **overrides)
