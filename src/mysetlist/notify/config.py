"""Settings of the notify capability (environment or `.env`, like `core.config`).

The provider names (`EMAIL_PROVIDERS`, `SMTP_URL`, `SENDGRID_*`, `AWS_REGION`,
`SES_ENDPOINT_URL`, `SNS_*`, `VAPID_*`, `EMAIL_FROM`) are the ones other tools rely on; the
spec's NOTIFICATION_CONFIG (batchSize, rateLimitPerMinute, retryDelayMs, maxRetries) is
`NOTIFY_BATCH_SIZE`, `NOTIFY_RATE_LIMIT_PER_MINUTE`, `NOTIFY_RETRY_DELAY_MS`,
`NOTIFY_MAX_RETRIES`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mysetlist.core.config import capability_settings

EMAIL_PROVIDER_NAMES = ("smtp", "sendgrid", "ses", "outbox")
# The browsers' push services (Chrome/Edge-on-Android/Opera/Samsung: FCM; Firefox: Mozilla
# autopush; Edge on Windows: WNS; Safari: Apple).
BROWSER_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
    "*.push.apple.com",
)


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Email providers in order of preference; the next one takes over while one fails.
    email_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["smtp"], validation_alias="EMAIL_PROVIDERS"
    )
    smtp_url: str = Field(default="smtp://127.0.0.1:1025", validation_alias="SMTP_URL")
    # `outbox`: each email as an .eml file in this directory (demos, development).
    email_outbox_dir: Path | None = Field(
        default=None, validate_default=True, validation_alias="EMAIL_OUTBOX_DIR"
    )
    smtp_connections: int = Field(default=4, ge=1, le=64, validation_alias="SMTP_CONNECTIONS")
    # How long SMTP waits for the reply to a message's end (see SmtpProvider).
    smtp_data_timeout_seconds: float = Field(
        default=120.0, gt=0, le=600, validation_alias="SMTP_DATA_TIMEOUT_SECONDS"
    )
    sendgrid_api_key: str | None = Field(default=None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_url: str = Field(
        default="https://api.sendgrid.com", validation_alias="SENDGRID_API_URL"
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None, validation_alias="SENDGRID_WEBHOOK_PUBLIC_KEY"
    )
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    ses_endpoint_url: str | None = Field(default=None, validation_alias="SES_ENDPOINT_URL")
    ses_configuration_set: str | None = Field(
        default=None, validation_alias="SES_CONFIGURATION_SET"
    )
    sns_allowed_cert_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="SNS_ALLOWED_CERT_HOSTS"
    )
    sns_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="SNS_TOPIC_ARNS"
    )
    vapid_private_key: str | None = Field(default=None, validation_alias="VAPID_PRIVATE_KEY")
    vapid_subject: str | None = Field(default=None, validation_alias="VAPID_SUBJECT")
    # Web push: how long a push service keeps an undelivered message (pywebpush's default
    # of 0 drops it unless the browser is online), when a subscription without a success
    # expires, and (tests, local push servers only) whether plain-http endpoints are taken.
    push_ttl_seconds: int = Field(
        default=86400, ge=1, le=2419200, validation_alias="NOTIFY_PUSH_TTL_SECONDS"
    )
    push_idle_days: int = Field(default=60, ge=1, validation_alias="NOTIFY_PUSH_IDLE_DAYS")
    # Push endpoints are user-given URLs our workers POST to (notify/push/endpoints.py):
    # the hosts allowed ("*.notify.windows.com" takes subdomains; "*" any host, still only
    # at public addresses), how many subscriptions a user keeps (the oldest goes), and,
    # for tests and local push servers ONLY, origins exempt from the address rules
    # ("http://127.0.0.1:8123"; never set in production).
    push_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(BROWSER_PUSH_SERVICES),
        validation_alias="NOTIFY_PUSH_ALLOWED_HOSTS",
    )
    push_max_subscriptions: int = Field(
        default=10, ge=1, le=100, validation_alias="NOTIFY_PUSH_MAX_SUBSCRIPTIONS"
    )
    push_test_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="NOTIFY_PUSH_TEST_ORIGINS"
    )
    email_from: str = Field(
        default="MySetlist <notifications@mysetlist.example>", validation_alias="EMAIL_FROM"
    )
    # Where links in messages point (unsubscribe, tracking, the app itself).
    public_url: str = Field(default="http://127.0.0.1:8000", validation_alias="NOTIFY_PUBLIC_URL")
    app_url: str = Field(default="https://mysetlist.example", validation_alias="NOTIFY_APP_URL")
    unsubscribe_mailto: str = Field(
        default="unsubscribe@mysetlist.example", validation_alias="NOTIFY_UNSUBSCRIBE_MAILTO"
    )

    # The spec's NOTIFICATION_CONFIG. batchSize: deliveries claimed per transaction;
    # rateLimitPerMinute: 0 = off; applies globally and to each provider.
    batch_size: int = Field(default=50, ge=1, le=1000, validation_alias="NOTIFY_BATCH_SIZE")
    rate_limit_per_minute: int = Field(
        default=1000, ge=0, validation_alias="NOTIFY_RATE_LIMIT_PER_MINUTE"
    )
    retry_delay_ms: int = Field(default=5000, ge=1, validation_alias="NOTIFY_RETRY_DELAY_MS")
    max_retries: int = Field(default=3, ge=0, le=20, validation_alias="NOTIFY_MAX_RETRIES")
    # Per provider, "sendgrid=600,ses=14" per minute; unlisted providers use the global one.
    provider_rate_limits: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, validation_alias="NOTIFY_PROVIDER_RATE_LIMITS"
    )

    # Circuit breaker: this many failures in a row open a provider for the cooldown, then
    # one trial send decides whether traffic returns to it.
    breaker_failures: int = Field(default=3, ge=1, validation_alias="NOTIFY_BREAKER_FAILURES")
    breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, validation_alias="NOTIFY_BREAKER_COOLDOWN_SECONDS"
    )
    provider_timeout_seconds: float = Field(
        default=10.0, gt=0, validation_alias="NOTIFY_PROVIDER_TIMEOUT_SECONDS"
    )

    # Smart delivery.
    frequency_cap_per_day: int = Field(
        default=10, ge=1, validation_alias="NOTIFY_FREQUENCY_CAP_PER_DAY"
    )
    throttle_window_seconds: int = Field(
        default=3600, ge=1, validation_alias="NOTIFY_THROTTLE_WINDOW_SECONDS"
    )
    # A drain job sends until no due delivery is left or this budget is spent.
    drain_budget_seconds: float = Field(
        default=20.0, gt=0, validation_alias="NOTIFY_DRAIN_BUDGET_SECONDS"
    )
    # Jobs fed by data (notify/delivery/event_feeds.py): how far before a show its followers are
    # reminded, and how far back setlists entered and shows announced are looked for.
    show_reminder_hours: int = Field(
        default=24, ge=1, le=24 * 14, validation_alias="NOTIFY_SHOW_REMINDER_HOURS"
    )
    feed_lookback_days: int = Field(
        default=7, ge=1, le=90, validation_alias="NOTIFY_FEED_LOOKBACK_DAYS"
    )
    # The spec's FEATURE_FLAGS: defaults of a new user's channels.
    email_notifications: bool = Field(default=True, validation_alias="FEATURE_EMAIL_NOTIFICATIONS")
    push_notifications: bool = Field(default=False, validation_alias="FEATURE_PUSH_NOTIFICATIONS")

    @field_validator(
        "email_providers", "sns_allowed_cert_hosts", "sns_topic_arns", "push_allowed_hosts",
        "push_test_origins", mode="before",
    )  # fmt: skip
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("email_providers")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in EMAIL_PROVIDER_NAMES]
        if unknown or not value:
            raise ValueError(f"must list some of {', '.join(EMAIL_PROVIDER_NAMES)}; got {value}")
        return value

    @field_validator("email_outbox_dir")
    @classmethod
    def _outbox_has_a_directory(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None and "outbox" in info.data.get("email_providers", ()):
            raise ValueError("the outbox email provider needs a directory")
        return value

    @field_validator("push_test_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
                raise ValueError(f"{origin!r}: must be scheme://host:port")
            # Local push servers only: this list can never open the way to another host.
            try:
                loopback = ipaddress.ip_address(parts.hostname).is_loopback
            except ValueError:
                loopback = parts.hostname == "localhost"
            if not loopback:
                raise ValueError(f"{origin!r}: a test origin must be on loopback")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must be smtp://host:port or smtps://user:password@host:port")
        return value

    @field_validator("provider_rate_limits", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = (part.split("=", 1) for part in value.split(",") if part.strip())
            return {name.strip(): int(limit) for name, limit in pairs}
        return value


def load_notify_settings(**overrides: Any) -> NotifySettings:
    return capability_settings(NotifySettings, **overrides)
