"""Settings of the privacy capability (environment variables prefixed `MYSETLIST_`)."""

from __future__ import annotations

from typing import Annotated, Any

from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mysetlist.core.config import capability_settings


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # GDPR exports read every table about a user: per requesting user (or operator).
    export_rate_limit: str = Field(
        default="5/hour", validation_alias="MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT"
    )
    # Security monitoring: this many failed authentications, 403s or rate-limit hits from
    # one source within a minute writes an audit event and raises the alert gauge.
    security_alert_per_minute: int = Field(
        default=100, ge=1, validation_alias="MYSETLIST_SECURITY_ALERT_PER_MINUTE"
    )

    # Retention by anonymisation, the alternative to deletion per event type: events of a
    # listed type older than its days lose user, anonymous and session ids and properties
    # (the type, time, page and source stay for aggregates). JSON or "type=days,type=days".
    anonymise_events_after: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, validation_alias="MYSETLIST_ANONYMISE_EVENTS_AFTER"
    )
    # Notifications (with their deliveries, tracked links and digest items) older than this.
    notification_retention_days: int = Field(
        default=365, ge=1, validation_alias="MYSETLIST_NOTIFICATION_RETENTION_DAYS"
    )
    retention_batch_size: int = Field(
        default=10_000, ge=1, validation_alias="MYSETLIST_PRIVACY_RETENTION_BATCH"
    )

    @field_validator("anonymise_events_after", mode="before")
    @classmethod
    def _parse_days(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                import json

                return json.loads(text)
            pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
            return {k.strip(): int(v) for k, v in pairs}
        return value

    @field_validator("anonymise_events_after")
    @classmethod
    def _positive_days(cls, value: dict[str, int]) -> dict[str, int]:
        if any(days < 1 for days in value.values()):
            raise ValueError("days must be at least 1")
        return value

    @field_validator("export_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit
        return value


def load_privacy_settings(**overrides: Any) -> PrivacySettings:
    return capability_settings(PrivacySettings, **overrides)
