"""Settings of the privacy capability (environment variables prefixed `MYSETLIST_`)."""

from __future__ import annotations

from typing import Any

from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import load_settings_class


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # GDPR exports read every table about a user: per requesting user (or operator).
    export_rate_limit: str = Field(
        default="5/hour", validation_alias="MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT"
    )
    # The same namespace as the other capabilities' keys: erasure scans all of it.
    redis_key_prefix: str = Field(
        default="mysetlist",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        validation_alias="MYSETLIST_REDIS_KEY_PREFIX",
    )
    # Security monitoring: this many failed authentications, 403s or rate-limit hits from
    # one source within a minute writes an audit event and raises the alert gauge.
    security_alert_per_minute: int = Field(
        default=100, ge=1, validation_alias="MYSETLIST_SECURITY_ALERT_PER_MINUTE"
    )

    @field_validator("export_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit
        return value


def load_privacy_settings(**overrides: Any) -> PrivacySettings:
    return load_settings_class(PrivacySettings, **overrides)
