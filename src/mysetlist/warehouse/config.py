"""ETL_CONFIG: the spec's batch size, parallelism, max retries and timeout, plus schedules.

`batchSize` comes from `ANALYTICS_BATCH_SIZE` (core settings); the rest from `ETL_*`
environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import CronExpression, Settings, load_settings_class


class _EtlEnv(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    parallelism: int = Field(default=3, ge=1, le=32, validation_alias="ETL_PARALLELISM")
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias="ETL_MAX_RETRIES")
    timeout_ms: int = Field(default=300_000, ge=1000, validation_alias="ETL_TIMEOUT_MS")
    lock_timeout_ms: int = Field(default=10_000, ge=0, validation_alias="ETL_LOCK_TIMEOUT_MS")
    busy_wait_ms: int = Field(default=60_000, ge=0, validation_alias="ETL_BUSY_WAIT_MS")
    incremental_cron: CronExpression = Field(
        default="*/5 * * * *", validation_alias="ETL_INCREMENTAL_CRON"
    )
    lookback_days: int = Field(default=2, ge=0, le=60, validation_alias="ETL_LOOKBACK_DAYS")
    initial_days: int = Field(default=90, ge=1, le=3650, validation_alias="ETL_INITIAL_DAYS")
    retention_days: int = Field(default=730, ge=30, validation_alias="ETL_RETENTION_DAYS")
    reindex_bloat_ratio: float = Field(
        default=0.5, gt=0, lt=1, validation_alias="ETL_REINDEX_BLOAT_RATIO"
    )
    reindex_min_bytes: int = Field(
        default=8 * 1024 * 1024, validation_alias="ETL_REINDEX_MIN_BYTES"
    )
    work_mem: str = Field(default="128MB", validation_alias="ETL_WORK_MEM")


@dataclass(frozen=True)
class EtlConfig:
    batch_size: int = 1000
    parallelism: int = 3  # days loaded side by side (each its own connection)
    max_retries: int = 3
    timeout_ms: int = 300_000  # 5 minutes, per statement (statement_timeout)
    # A day's load gives up waiting for a lock after this long (0: wait up to timeout_ms)
    # and is retried with backoff, up to max_retries times.
    lock_timeout_ms: int = 10_000
    # The scheduled daily run waits this long for another run to end, then is retried later
    # (exponential backoff, max_retries times).
    busy_wait_ms: int = 60_000
    incremental_cron: str = "*/5 * * * *"
    lookback_days: int = 2  # a daily run also reloads this many days before its window
    initial_days: int = 90  # the first daily run (no watermark) loads this many days
    retention_days: int = 730
    reindex_bloat_ratio: float = 0.5
    reindex_min_bytes: int = 8 * 1024 * 1024
    work_mem: str = "128MB"

    @classmethod
    def from_settings(cls, settings: Settings) -> EtlConfig:
        env = load_settings_class(_EtlEnv)  # the same field names as EtlConfig's
        return cls(batch_size=settings.analytics_batch_size, **env.model_dump())
