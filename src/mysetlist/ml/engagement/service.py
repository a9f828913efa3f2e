"""Engagement forecasts: evaluate on a time split (MAE of the model vs "same as last week",
the 28-day mean and zero, with a paired bootstrap interval against the best of them),
register the model (active only if its MAE is no worse than the active version's on the
same test users), and store each user's 7-day forecast as of the newest feature day, made
by the active version."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import psycopg

from mysetlist.core.db import Database, read_sql
from mysetlist.ml.engagement.model import (
    ARTIFACT_FORMAT,
    HORIZON_DAYS,
    PARAMS,
    EngagementModel,
    baseline_forecasts,
    fit_engagement_model,
    mae,
    naive_forecast,
    paired_mae_interval,
)
from mysetlist.ml.features.training_data import (
    USER_FEATURES,
    FeatureFrame,
    NotEnoughHistory,
    TimeSplit,
    feature_split,
    labelled_rows,
    rows_as_of,
)
from mysetlist.ml.model_registry import TrainingOutcome, register_model, serving_model

_PACKAGE = "mysetlist.ml.engagement"
MODEL_NAME = "engagement_forecast"


@dataclass
class EngagementEvaluation:
    split: dict[str, Any]
    rows: dict[str, int]
    model_mae: float
    naive_mae: float  # "same as last week" (= baselines["last_week"])
    mean_engagement: float
    baselines: dict[str, float]  # MAE of each baseline by name
    best_baseline: str
    # Model minus best baseline MAE on the test users, paired bootstrap 95 % interval.
    intervals: dict[str, dict[str, float]]


@dataclass
class EngagementTraining(TrainingOutcome):
    evaluation: EngagementEvaluation
    forecast_as_of: date
    forecast_version: int
    forecasts: int


async def evaluate_engagement(
    conn: psycopg.AsyncConnection[Any],
) -> tuple[EngagementEvaluation, TimeSplit, date]:
    """Fit on the cut-offs whose next week closed by the test cut-off; test on it."""
    evaluation, split, last_day, _, _ = await _evaluate(conn)
    return evaluation, split, last_day


async def _evaluate(
    conn: psycopg.AsyncConnection[Any],
) -> tuple[EngagementEvaluation, TimeSplit, date, FeatureFrame, EngagementModel]:
    split, last_day = await feature_split(conn, horizon_days=HORIZON_DAYS)
    fit = await labelled_rows(conn, [*split.fit, split.calibrate], horizon_days=HORIZON_DAYS)
    test = await labelled_rows(conn, [split.test], horizon_days=HORIZON_DAYS)
    if min(len(fit), len(test)) == 0:
        raise NotEnoughHistory("the time split has a stage without rows")
    model = await asyncio.to_thread(fit_engagement_model, fit)
    forecast = model.forecast(test.x)
    truth = test.engagement_next_7
    baselines = baseline_forecasts(test)
    errors = {name: mae(truth, b) for name, b in baselines.items()}
    best = min(errors, key=lambda name: errors[name])
    interval = await asyncio.to_thread(paired_mae_interval, truth, forecast, baselines[best])
    evaluation = EngagementEvaluation(
        split={"fit": [d.isoformat() for d in [*split.fit, split.calibrate]],
               "test": split.test.isoformat()},
        rows={"fit": len(fit), "test": len(test)},
        model_mae=mae(truth, forecast),
        naive_mae=errors["last_week"],
        mean_engagement=float(truth.mean()),
        baselines=errors,
        best_baseline=best,
        intervals={"model_minus_best_baseline_mae": interval},
    )  # fmt: skip
    return evaluation, split, last_day, test, model


def _mae_on(test: FeatureFrame) -> Callable[[bytes], float]:
    """The registry's paired comparison: an artifact's MAE on these test users."""

    def score(artifact: bytes) -> float:
        model = EngagementModel.loads(artifact)
        if tuple(model.features) != USER_FEATURES:
            raise ValueError("the version was fitted on other features")
        return mae(test.engagement_next_7, model.forecast(test.x))

    return score


async def train_engagement(db: Database) -> EngagementTraining:
    """Evaluate, register the evaluated model (active only if its test MAE is no worse than
    the active version's on the same test users), then forecast every user with whichever
    version is active.

    The version registered is the one evaluated, fitted on the cut-offs whose next week
    closed by the test cut-off, not refitted on the test week itself: so neither it nor
    any earlier version has seen the test week, and the paired comparison is fair (a
    refit on the test week would be scored on its own training rows)."""
    async with db.transaction() as conn:
        evaluation, split, last_day, test, model = await _evaluate(conn)
    async with db.transaction() as conn:
        registered = await register_model(
            conn, MODEL_NAME,
            metrics={"mae": evaluation.model_mae, "naive_mae": evaluation.naive_mae,
                     **{f"{name}_mae": v for name, v in evaluation.baselines.items()}},
            primary_metric="mae", higher_is_better=False,
            params={**PARAMS, "horizon_days": HORIZON_DAYS, "evaluation_split": evaluation.split},
            artifact=model.dumps(), artifact_format=ARTIFACT_FORMAT,
            # the newest outcome it saw: the week after its newest cut-off, up to the test one
            data_from=split.fit[0], data_to=split.test, score_active=_mae_on(test),
        )  # fmt: skip
        version, active = await serving_model(conn, registered, model, EngagementModel.loads)
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
