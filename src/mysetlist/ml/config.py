"""The ML capability's settings: the feature store, the churn and engagement models and the
ML routes (`ML_*` variables) here, the recommender's (`RECOMMEND_*`) in its part,
`ml/recommendations/config.py`, which the recommender code takes as its narrower type."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mysetlist.core.config import CronExpression, capability_settings
from mysetlist.ml.recommendations.config import RecommendationSettings


class MlSettings(RecommendationSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # When the feature build looks for days the ETL has closed; it then chains training.
    # Hourly, so it follows the daily ETL (ETL_SCHEDULE_CRON) whenever that finishes.
    features_cron: CronExpression = Field(default="40 * * * *", validation_alias="ML_FEATURES_CRON")
    # The first build (no watermark) covers this many days, enough for time-split training.
    feature_backfill_days: int = Field(
        default=90, ge=1, le=730, validation_alias="ML_FEATURE_BACKFILL_DAYS"
    )
    # Each build also rebuilds this many days before its new ones (the ETL reloads late days).
    feature_lookback_days: int = Field(
        default=2, ge=0, le=60, validation_alias="ML_FEATURE_LOOKBACK_DAYS"
    )
    churn_horizon_days: int = Field(
        default=14, ge=1, le=90, validation_alias="ML_CHURN_HORIZON_DAYS"
    )
    # The population at risk: users active in this many days up to a cut-off (the churn
    # model learns, is judged on and scores only them; a user silent longer has churned).
    churn_active_window_days: int = Field(
        default=14, ge=1, le=56, validation_alias="ML_CHURN_ACTIVE_WINDOW_DAYS"
    )
    # Risk buckets: probability >= medium is "medium", >= high is "high", else "low".
    churn_medium_risk: float = Field(
        default=0.3, gt=0, lt=1, validation_alias="ML_CHURN_MEDIUM_RISK"
    )
    churn_high_risk: float = Field(default=0.6, gt=0, lt=1, validation_alias="ML_CHURN_HIGH_RISK")
    # Reads anyone may make without a token (predicted setlists, the setlist leaderboard), per
    # client IP, in the `limits` library's notation; beyond it a 429 with Retry-After.
    anonymous_read_rate_limit: str = Field(
        default="120/minute", validation_alias="ML_RATE_LIMIT_ANONYMOUS_READS"
    )

    # How long a predicted setlist answer is shared by every caller (Redis): a changed input
    # (a newly played setlist, a promoted ranker, fans' votes for a blend, new scores) is
    # seen at most this late; the show's own start and status, and who may see it, are
    # checked on every read. 0: no cache.
    predicted_setlist_cache_seconds: float = Field(
        default=30.0, ge=0, le=3600, validation_alias="ML_PREDICTED_SETLIST_CACHE_SECONDS"
    )

    @field_validator("anonymous_read_rate_limit")
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError on anything but "N/period"
        return value

    @field_validator("churn_high_risk")
    @classmethod
    def _above_medium(cls, high: float, info: ValidationInfo) -> float:
        medium = info.data.get("churn_medium_risk")
        if medium is not None and high <= medium:
            raise ValueError(f"must be above ML_CHURN_MEDIUM_RISK ({medium})")
        return high


def load_ml_settings(**overrides: Any) -> MlSettings:
    return capability_settings(MlSettings, **overrides)
