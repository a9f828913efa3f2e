"""ETL_CONFIG: the spec's batch size, parallelism, max retries and timeout, plus schedules.

`batchSize` is `ANALYTICS_BATCH_SIZE`, a core setting (tracking's group commit reads it
too); the rest are the `ETL_*` environment variables declared here.
"""

from __future__ import annotations

from pydantic import Field, PrivateAttr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import CronExpression, Settings


class EtlConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Days loaded side by side (each its own connection).
    parallelism: int = Field(default=3, ge=1, le=32, validation_alias="ETL_PARALLELISM")
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias="ETL_MAX_RETRIES")
    # Per statement (statement_timeout): 5 minutes.
    timeout_ms: int = Field(default=300_000, ge=1000, validation_alias="ETL_TIMEOUT_MS")
    # A day's load gives up waiting for a lock after this long (0: wait up to timeout_ms)
    # and is retried with backoff, up to max_retries times.
    lock_timeout_ms: int = Field(default=10_000, ge=0, validation_alias="ETL_LOCK_TIMEOUT_MS")
    # The scheduled daily run waits this long for another run to end, then is retried later
    # (exponential backoff, max_retries times).
    busy_wait_ms: int = Field(default=60_000, ge=0, validation_alias="ETL_BUSY_WAIT_MS")
    incremental_cron: CronExpression = Field(
        default="*/5 * * * *", validation_alias="ETL_INCREMENTAL_CRON"
    )
    # A daily run also reloads this many days before its window.
    lookback_days: int = Field(default=2, ge=0, le=60, validation_alias="ETL_LOOKBACK_DAYS")
    # The first daily run (no watermark) loads this many days.
    initial_days: int = Field(default=90, ge=1, le=3650, validation_alias="ETL_INITIAL_DAYS")
    retention_days: int = Field(default=730, ge=30, validation_alias="ETL_RETENTION_DAYS")
    reindex_bloat_ratio: float = Field(
        default=0.5, gt=0, lt=1, validation_alias="ETL_REINDEX_BLOAT_RATIO"
    )
    reindex_min_bytes: int = Field(
        default=8 * 1024 * 1024, validation_alias="ETL_REINDEX_MIN_BYTES"
    )
    work_mem: str = Field(default="128MB", validation_alias="ETL_WORK_MEM")

    # Core's ANALYTICS_BATCH_SIZE (not a variable of this class: one owner per variable).
    _batch_size: int = PrivateAttr(default=1000)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @classmethod
    def from_settings(cls, settings: Settings) -> EtlConfig:
        """The warehouse's settings (`settings.of`) with core's batch size."""
        config = settings.of(cls).model_copy()
        config._batch_size = settings.analytics_batch_size
        return config
