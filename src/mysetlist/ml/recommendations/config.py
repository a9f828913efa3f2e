"""The recommender's part of the ML settings (`RECOMMEND_*`): the interaction matrix's
confidence weights, the window of events it reads, the response cache's lifetime and the
nightly training. Read from the environment as part of `mysetlist.ml.config.MlSettings`,
the capability's one settings class; recommender code takes this narrower type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mysetlist.core.config import CronExpression


class RecommendationSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    # Confidence one interaction adds to a (user, artist) cell.
    follow_weight: float = Field(default=4.0, ge=0, validation_alias="RECOMMEND_FOLLOW_WEIGHT")
    vote_weight: float = Field(default=2.0, ge=0, validation_alias="RECOMMEND_VOTE_WEIGHT")
    view_weight: float = Field(default=0.5, ge=0, validation_alias="RECOMMEND_VIEW_WEIGHT")
    attend_weight: float = Field(default=5.0, ge=0, validation_alias="RECOMMEND_ATTEND_WEIGHT")
    # Event types that record attending a show (properties.show_id).
    attend_events: list[str] = Field(
        default=["attend", "show_attend", "checkin"], validation_alias="RECOMMEND_ATTEND_EVENTS"
    )
    history_days: int = Field(default=365, ge=1, le=3650, validation_alias="RECOMMEND_HISTORY_DAYS")
    trending_days: int = Field(default=14, ge=1, le=365, validation_alias="RECOMMEND_TRENDING_DAYS")
    cache_seconds: int = Field(default=3600, ge=1, validation_alias="RECOMMEND_CACHE_SECONDS")
    train_cron: CronExpression = Field(
        default="30 3 * * *", validation_alias="RECOMMEND_TRAIN_CRON"
    )
    model_refresh_seconds: float = Field(
        default=10.0, gt=0, validation_alias="RECOMMEND_MODEL_REFRESH_SECONDS"
    )
