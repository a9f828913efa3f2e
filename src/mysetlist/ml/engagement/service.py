"""Engagement forecasts: evaluate on a time split (MAE of the model vs the naive "same as
last week"), register the model (active only if its MAE is no worse), and store each
user's 7-day forecast as of the newest feature day, made by the active version."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import psycopg

from mysetlist.core.db import Database, fetch_one_in, read_sql
from mysetlist.ml.engagement.model import (
    ARTIFACT_FORMAT,
    HORIZON_DAYS,
    PARAMS,
    EngagementModel,
    fit_engagement_model,
    mae,
    naive_forecast,
)
from mysetlist.ml.features.training_data import (
    FeatureFrame,
    NotEnoughHistory,
    TimeSplit,
    feature_days,
    labelled_rows,
    rows_as_of,
    time_split,
)
from mysetlist.ml.model_registry import register_model

_PACKAGE = "mysetlist.ml.engagement"
MODEL_NAME = "engagement_forecast"


@dataclass
class EngagementEvaluation:
    split: dict[str, Any]
    rows: dict[str, int]
    model_mae: float
    naive_mae: float
    mean_engagement: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EngagementTraining:
    evaluation: EngagementEvaluation
    version: int
    activated: bool
    decision: str
    forecast_as_of: date
    forecast_version: int
    forecasts: int


async def evaluate_engagement(
    conn: psycopg.AsyncConnection[Any],
) -> tuple[EngagementEvaluation, TimeSplit, date]:
    """Fit on the cut-offs whose next week closed by the test cut-off; test on it."""
    days = await feature_days(conn)
    split = time_split(*days, horizon_days=HORIZON_DAYS) if days else None
    if days is None or split is None:
        raise NotEnoughHistory(f"the feature store needs at least {3 * HORIZON_DAYS + 1} days")
    fit = await labelled_rows(conn, [*split.fit, split.calibrate], horizon_days=HORIZON_DAYS)
    test = await labelled_rows(conn, [split.test], horizon_days=HORIZON_DAYS)
    if min(len(fit), len(test)) == 0:
        raise NotEnoughHistory("the time split has a stage without rows")
    forecast = (await asyncio.to_thread(fit_engagement_model, fit)).forecast(test.x)
    evaluation = EngagementEvaluation(
        split={"fit": [d.isoformat() for d in [*split.fit, split.calibrate]],
               "test": split.test.isoformat()},
        rows={"fit": len(fit), "test": len(test)},
        model_mae=mae(test.engagement_next_7, forecast),
        naive_mae=mae(test.engagement_next_7, naive_forecast(test)),
        mean_engagement=float(test.engagement_next_7.mean()),
    )  # fmt: skip
    return evaluation, split, days[1]


async def train_engagement(db: Database) -> EngagementTraining:
    async with db.transaction() as conn:
        evaluation, split, last_day = await evaluate_engagement(conn)
        fit = await labelled_rows(
            conn, [*split.fit, split.calibrate, split.test], horizon_days=HORIZON_DAYS
        )
    model = await asyncio.to_thread(fit_engagement_model, fit)
    async with db.transaction() as conn:
        registered = await register_model(
            conn, MODEL_NAME,
            metrics={"mae": evaluation.model_mae, "naive_mae": evaluation.naive_mae},
            primary_metric="mae", higher_is_better=False,
            params={**PARAMS, "horizon_days": HORIZON_DAYS, "evaluation_split": evaluation.split},
            artifact=model.dumps(), artifact_format=ARTIFACT_FORMAT,
            data_from=split.fit[0], data_to=last_day,
        )  # fmt: skip
        if registered.activated:
            version, active = registered.version.version, model
        else:
            row = await fetch_one_in(
                conn, read_sql("mysetlist.ml.churn", "active_model_artifact.sql"),
                {"name": MODEL_NAME},
            )  # fmt: skip
            assert row is not None, "register_model leaves an active version"
            version, active = int(row["version"]), EngagementModel.loads(bytes(row["artifact"]))
        frame = await rows_as_of(conn, last_day)
        await _store_forecasts(conn, last_day, frame, version, active)
    return EngagementTraining(
        evaluation=evaluation, version=registered.version.version,
        activated=registered.activated, decision=registered.version.decision,
        forecast_as_of=last_day, forecast_version=version, forecasts=len(frame),
    )  # fmt: skip


async def _store_forecasts(
    conn: psycopg.AsyncConnection[Any],
    day: date,
    frame: FeatureFrame,
    version: int,
    model: EngagementModel,
) -> None:
    forecast = model.forecast(frame.x) if len(frame) else np.empty(0)
    last_week = naive_forecast(frame)
    await conn.execute(read_sql(_PACKAGE, "delete_forecasts.sql"), {"day": day})
    async with conn.cursor().copy(read_sql(_PACKAGE, "copy_forecasts.sql")) as copy:
        for user_id, f, naive in zip(frame.user_ids, forecast, last_week, strict=True):
            await copy.write_row((day, user_id, float(f), float(naive), version))
