"""ETL_CONFIG: the spec's batch size, parallelism, max retries and timeout, plus schedules.

`batchSize` comes from `ANALYTICS_BATCH_SIZE` (core settings); the rest from `ETL_*`
environment variables. `ETL_TEST_SLEEP` is reserved for tests: it makes a step sleep
(`pg_sleep`, inside the day's transaction) so a test can kill or cancel a run mid-day.
Format: `step=seconds` or `step@YYYY-MM-DD=seconds`, comma separated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import CronExpression, Settings, load_settings_class


class _EtlEnv(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    parallelism: int = Field(default=3, ge=1, le=32, validation_alias="ETL_PARALLELISM")
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias="ETL_MAX_RETRIES")
    timeout_ms: int = Field(default=300_000, ge=1000, validation_alias="ETL_TIMEOUT_MS")
    lock_timeout_ms: int = Field(default=10_000, ge=0, validation_alias="ETL_LOCK_TIMEOUT_MS")
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
    test_sleep: str = Field(default="", validation_alias="ETL_TEST_SLEEP")


@dataclass(frozen=True)
class EtlConfig:
    batch_size: int = 1000
    parallelism: int = 3  # days loaded side by side (each its own connection)
    max_retries: int = 3
    timeout_ms: int = 300_000  # 5 minutes, per statement (statement_timeout)
    # A day's load gives up waiting for a lock after this long (0: wait up to timeout_ms)
    # and is retried with backoff, up to max_retries times.
    lock_timeout_ms: int = 10_000
    incremental_cron: str = "*/5 * * * *"
    lookback_days: int = 2  # a daily run also reloads this many days before its window
    initial_days: int = 90  # the first daily run (no watermark) loads this many days
    retention_days: int = 730
    reindex_bloat_ratio: float = 0.5
    reindex_min_bytes: int = 8 * 1024 * 1024
    work_mem: str = "128MB"
    test_sleep: dict[tuple[str, date | None], float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> EtlConfig:
        env = load_settings_class(_EtlEnv)  # the same field names as EtlConfig's
        fields = env.model_dump(exclude={"test_sleep"})
        return cls(
            batch_size=settings.analytics_batch_size,
            test_sleep=parse_test_sleep(env.test_sleep),
            **fields,
        )

    def sleep_for(self, step: str, day: date | None) -> float:
        return self.test_sleep.get((step, day), 0.0) or self.test_sleep.get((step, None), 0.0)


def parse_test_sleep(value: str) -> dict[tuple[str, date | None], float]:
    out: dict[tuple[str, date | None], float] = {}
    for item in filter(None, (p.strip() for p in value.split(","))):
        key, _, seconds = item.partition("=")
        step, _, day = key.partition("@")
        out[(step.strip(), date.fromisoformat(day) if day else None)] = float(seconds)
    return out
