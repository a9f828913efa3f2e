"""Churn: evaluate on a time split (model vs recency baseline, and against the demo
world's planted churn when there is one), register the model, score every user as of the
newest feature day with the active version and store probability, bucket and top features.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.ml.churn.model import (
    ARTIFACT_FORMAT,
    PARAMS,
    ChurnModel,
    RecencyBaseline,
    fit_churn_model,
    risk_bucket,
    scores,
)
from mysetlist.ml.features.config import MlSettings
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

_PACKAGE = "mysetlist.ml.churn"
MODEL_NAME = "churn"


@dataclass
class ChurnEvaluation:
    horizon_days: int
    split: dict[str, Any]
    rows: dict[str, int]
    churn_rate: float
    model: dict[str, float]
    baseline: dict[str, float]
    # Against the demo world's planted churn (churn date on or before the window's end).
    planted: dict[str, dict[str, float]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChurnTraining:
    evaluation: ChurnEvaluation
    version: int
    activated: bool
    decision: str
    scored_as_of: date
    scored_version: int
    scored: int
    buckets: dict[str, int] = field(default_factory=dict)


async def _split(conn: psycopg.AsyncConnection[Any], horizon_days: int) -> tuple[TimeSplit, date]:
    days = await feature_days(conn)
    split = time_split(*days, horizon_days=horizon_days) if days else None
    if days is None or split is None:
        raise NotEnoughHistory(
            f"the feature store needs at least {3 * horizon_days + 1} days of features"
            " (run the ETL, then the feature build)"
        )
    return split, days[1]


async def _planted_truth(
    conn: psycopg.AsyncConnection[Any], frame: FeatureFrame, window_end: date
) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    present = await fetch_one_in(conn, "SELECT to_regclass('demo_truth.user_profile') AS t")
    if present is None or present["t"] is None:
        return None
    rows = await fetch_all_in(conn, read_sql(_PACKAGE, "planted_churn.sql"))
    end = datetime.combine(window_end + timedelta(days=1), time(0), tzinfo=UTC)
    gone = {r["user_id"] for r in rows if r["churn_at"] < end}
    return np.array([u in gone for u in frame.user_ids], dtype=bool)


async def evaluate_churn(
    conn: psycopg.AsyncConnection[Any], settings: MlSettings
) -> tuple[ChurnEvaluation, TimeSplit, date]:
    """Fit on the split's fitting cut-offs, calibrate on the next, score the test cut-off."""
    horizon = settings.churn_horizon_days
    split, last_day = await _split(conn, horizon)
    fit = await labelled_rows(conn, split.fit, horizon_days=horizon)
    calibrate = await labelled_rows(conn, [split.calibrate], horizon_days=horizon)
    test = await labelled_rows(conn, [split.test], horizon_days=horizon)
    if min(len(fit), len(calibrate), len(test)) == 0 or len(set(fit.churned)) < 2:
        raise NotEnoughHistory("the time split has a stage without rows or without churners")

    def run() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        model = fit_churn_model(fit, calibrate)
        return model.probability(test.x), RecencyBaseline.fit(fit).probability(test)

    p_model, p_base = await asyncio.to_thread(run)
    evaluation = ChurnEvaluation(
        horizon_days=horizon,
        split={"fit": [d.isoformat() for d in split.fit], "calibrate": split.calibrate.isoformat(),
               "test": split.test.isoformat()},
        rows={"fit": len(fit), "calibrate": len(calibrate), "test": len(test)},
        churn_rate=float(test.churned.mean()),
        model=scores(test.churned, p_model),
        baseline=scores(test.churned, p_base),
    )  # fmt: skip
    planted = await _planted_truth(conn, test, split.test + timedelta(days=horizon))
    if planted is not None:
        evaluation.planted = {
            "model": scores(planted, p_model),
            "baseline": scores(planted, p_base),
        }
    return evaluation, split, last_day


async def _active_model(conn: psycopg.AsyncConnection[Any]) -> tuple[int, ChurnModel]:
    row = await fetch_one_in(
        conn, read_sql(_PACKAGE, "active_model_artifact.sql"), {"name": MODEL_NAME}
    )
    assert row is not None, "register_model leaves an active version"
    return int(row["version"]), ChurnModel.loads(bytes(row["artifact"]))


async def train_churn(db: Database, settings: MlSettings) -> ChurnTraining:
    """Evaluate, fit the version to register on every cut-off whose outcome is known
    (calibrated on the newest), register it (active only if its ROC-AUC is no worse),
    then score as of the newest feature day with whichever version is active."""
    horizon = settings.churn_horizon_days
    async with db.transaction() as conn:
        evaluation, split, last_day = await evaluate_churn(conn, settings)
        fit = await labelled_rows(conn, [*split.fit, split.calibrate], horizon_days=horizon)
        calibrate = await labelled_rows(conn, [split.test], horizon_days=horizon)
    model = await asyncio.to_thread(fit_churn_model, fit, calibrate)
    metrics = {**evaluation.model, **{f"baseline_{k}": v for k, v in evaluation.baseline.items()}}
    if evaluation.planted is not None:
        metrics |= {f"planted_{k}": v for k, v in evaluation.planted["model"].items()}
        metrics |= {f"planted_baseline_{k}": v for k, v in evaluation.planted["baseline"].items()}
    async with db.transaction() as conn:
        registered = await register_model(
            conn, MODEL_NAME, metrics=metrics, primary_metric="roc_auc",
            params={**PARAMS, "horizon_days": horizon, "calibration": "sigmoid",
                    "evaluation_split": evaluation.split},
            artifact=model.dumps(), artifact_format=ARTIFACT_FORMAT,
            data_from=split.fit[0], data_to=last_day,
        )  # fmt: skip
        version, active = (
            (registered.version.version, model)
            if registered.activated
            else await _active_model(conn)
        )
        frame = await rows_as_of(conn, last_day)
        buckets = await _store_predictions(conn, settings, last_day, frame, version, active)
    return ChurnTraining(
        evaluation=evaluation, version=registered.version.version,
        activated=registered.activated, decision=registered.version.decision,
        scored_as_of=last_day, scored_version=version, scored=len(frame), buckets=buckets,
    )  # fmt: skip


async def _store_predictions(
    conn: psycopg.AsyncConnection[Any],
    settings: MlSettings,
    day: date,
    frame: FeatureFrame,
    version: int,
    model: ChurnModel,
) -> dict[str, int]:
    def run() -> tuple[np.ndarray[Any, Any], list[list[dict[str, Any]]]]:
        return model.probability(frame.x), model.top_features(frame.x)

    probability, tops = await asyncio.to_thread(run) if len(frame) else (np.empty(0), [])
    buckets = dict.fromkeys(("low", "medium", "high"), 0)
    await conn.execute(read_sql(_PACKAGE, "delete_predictions.sql"), {"day": day})
    async with conn.cursor().copy(read_sql(_PACKAGE, "copy_predictions.sql")) as copy:
        for user_id, p, top in zip(frame.user_ids, probability, tops, strict=True):
            bucket = risk_bucket(
                float(p), medium=settings.churn_medium_risk, high=settings.churn_high_risk
            )
            buckets[bucket] += 1
            await copy.write_row(
                (day, user_id, settings.churn_horizon_days, float(p), bucket, Jsonb(top), version)
            )
    return buckets
