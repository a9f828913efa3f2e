"""Settings of the dashboard, read from the environment like `core.config`."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import capability_settings


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # How long one dashboard document stays in Redis: short, so numbers stay fresh, long
    # enough that a wall of open dashboards costs one set of queries per interval.
    cache_seconds: float = Field(
        default=15.0, gt=0, le=3600, validation_alias="DASHBOARD_CACHE_SECONDS"
    )
    # Seconds between two live updates pushed over SSE.
    live_interval_seconds: float = Field(
        default=2.0, ge=0.2, le=60, validation_alias="DASHBOARD_LIVE_INTERVAL_SECONDS"
    )
    # A one-time login link works this long; the session it opens, this long.
    login_link_seconds: int = Field(
        default=900, ge=10, le=86400, validation_alias="DASHBOARD_LOGIN_LINK_SECONDS"
    )
    session_seconds: int = Field(
        default=12 * 3600, ge=60, le=7 * 86400, validation_alias="DASHBOARD_SESSION_SECONDS"
    )
    # Where the printed login link points (the API's public address).
    public_url: str = Field(
        default="http://127.0.0.1:8000", min_length=1, validation_alias="DASHBOARD_PUBLIC_URL"
    )
    panel_timeout_ms: int = Field(
        default=5000, ge=100, le=120_000, validation_alias="DASHBOARD_PANEL_TIMEOUT_MS"
    )


def dashboard_settings(**overrides: Any) -> DashboardSettings:
    return capability_settings(DashboardSettings, **overrides)
