"""Churn: evaluate on a time split (model vs recency baseline, and against the demo
world's planted churn when there is one), register the model (promoted only when it ranks
the test users no worse than the active version does), score the users at risk as of the
newest feature day with the active version and store probability, bucket and top features.

Every stage reads only the population at risk (users active in the
`churn_active_window_days` up to the cut-off, see model.at_risk).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from sklearn.metrics import roc_auc_score

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.ml.churn.model import (
    ARTIFACT_FORMAT,
    DEFAULT_PARAMS,
    PARAM_GRID,
    VALIDATION_CUT_OFFS,
    ChurnModel,
    ParamChoice,
    RecencyBaseline,
    at_risk,
    choose_params,
    fit_churn_model,
    paired_auc_interval,
    risk_bucket,
    scores,
)
from mysetlist.ml.config import MlSettings
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

_PACKAGE = "mysetlist.ml.churn"
MODEL_NAME = "churn"


@dataclass
class ChurnEvaluation:
    horizon_days: int
    active_window_days: int  # the population at risk: active in these days up to a cut-off
    split: dict[str, Any]
    rows: dict[str, int]
    churn_rate: float
    # How the hyper-parameters were chosen: every candidate's validation ROC-AUC ("tuned"
    # false: too few cut-offs for a validation split, DEFAULT_PARAMS were used as they are).
    tuning: dict[str, Any]
    model: dict[str, float]
    baseline: dict[str, float]
    # Model minus baseline ROC-AUC on the test users, with its paired bootstrap 95 % interval.
    intervals: dict[str, dict[str, float]]
    # Against the demo world's planted churn (churn date on or before the window's end),
    # same users: {"model": scores, "baseline": scores, "model_minus_baseline_roc_auc": …}.
    planted: dict[str, dict[str, float]] | None = None


@dataclass
class ChurnTraining(TrainingOutcome):
    evaluation: ChurnEvaluation
    scored_as_of: date
    scored_version: int
    scored: int
    buckets: dict[str, int] = field(default_factory=dict)


async def _planted_truth(
    conn: psycopg.AsyncConnection[Any], frame: FeatureFrame, window_end: date
) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    demo = await fetch_one_in(conn, read_sql(_PACKAGE, "demo_world_present.sql"))
    if demo is None or not demo["present"]:
        return None
    rows = await fetch_all_in(conn, read_sql(_PACKAGE, "planted_churn.sql"))
    end = datetime.combine(window_end + timedelta(days=1), time(0), tzinfo=UTC)
    gone = {r["user_id"] for r in rows if r["churn_at"] < end}
    return np.array([u in gone for u in frame.user_ids], dtype=bool)


def _tune(fit: FeatureFrame, split: TimeSplit, horizon: int) -> ParamChoice:
    """Choose the hyper-parameters on validation cut-offs: the newest fitting cut-offs,
    judged by a model fitted on the fitting cut-offs whose outcomes closed before them.
    DEFAULT_PARAMS, untuned, when the history is too short for that."""
    validation_days = split.fit[-VALIDATION_CUT_OFFS:]
    inner_days = [d for d in split.fit if d + timedelta(days=horizon) <= validation_days[0]]
    inner = fit.where(np.isin(fit.as_of, np.array(inner_days, dtype="datetime64[D]")))
    validate = fit.where(np.isin(fit.as_of, np.array(validation_days, dtype="datetime64[D]")))
    if len(set(inner.churned)) < 2 or len(set(validate.churned)) < 2:
        return ParamChoice(DEFAULT_PARAMS, [], [])
    return choose_params(inner, validate)


@dataclass
class _Evaluated:
    evaluation: ChurnEvaluation
    split: TimeSplit
    last_day: date
    test: FeatureFrame  # the users at risk at the test cut-off, with their outcomes


async def evaluate_churn(
    conn: psycopg.AsyncConnection[Any], settings: MlSettings
) -> tuple[ChurnEvaluation, TimeSplit, date]:
    """On the users at risk: choose the hyper-parameters on validation cut-offs, fit on
    the split's fitting cut-offs, calibrate the model and the baseline on the next, score
    the test cut-off."""
    done = await _evaluate(conn, settings)
    return done.evaluation, done.split, done.last_day


async def _evaluate(conn: psycopg.AsyncConnection[Any], settings: MlSettings) -> _Evaluated:
    horizon, window = settings.churn_horizon_days, settings.churn_active_window_days
    split, last_day = await feature_split(conn, horizon_days=horizon)
    fit = at_risk(await labelled_rows(conn, split.fit, horizon_days=horizon), window)
    calibrate = at_risk(await labelled_rows(conn, [split.calibrate], horizon_days=horizon), window)
    test = at_risk(await labelled_rows(conn, [split.test], horizon_days=horizon), window)
    if min(len(fit), len(calibrate), len(test)) == 0 or any(
        len(set(stage.churned)) < 2 for stage in (fit, calibrate, test)
    ):
        raise NotEnoughHistory("the time split has a stage without rows or without churners")

    def run() -> tuple[ParamChoice, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        choice = _tune(fit, split, horizon)
        model = fit_churn_model(fit, calibrate, choice.params)
        baseline = RecencyBaseline.fit(fit, calibrate)
        return choice, model.probability(test.x), baseline.probability(test)

    choice, p_model, p_base = await asyncio.to_thread(run)
    evaluation = ChurnEvaluation(
        horizon_days=horizon, active_window_days=window,
        split={"fit": [d.isoformat() for d in split.fit], "calibrate": split.calibrate.isoformat(),
               "test": split.test.isoformat()},
        rows={"fit": len(fit), "calibrate": len(calibrate), "test": len(test)},
        churn_rate=float(test.churned.mean()),
        tuning={"params": choice.params, "tuned": bool(choice.validation_roc_auc),
                "validation_cut_offs": choice.validation_cut_offs,
                "candidates": [{"params": p, "validation_roc_auc": a} for p, a
                               in zip(PARAM_GRID, choice.validation_roc_auc, strict=False)]},
        model=scores(test.churned, p_model),
        baseline=scores(test.churned, p_base),
        intervals={"model_minus_baseline_roc_auc":
                   await asyncio.to_thread(paired_auc_interval, test.churned, p_model, p_base)},
    )  # fmt: skip
    planted = await _planted_truth(conn, test, split.test + timedelta(days=horizon))
    if planted is not None:
        evaluation.planted = {
            "model": scores(planted, p_model),
            "baseline": scores(planted, p_base),
        }
        if 0 < planted.sum() < len(planted):
            evaluation.planted["model_minus_baseline_roc_auc"] = await asyncio.to_thread(
                paired_auc_interval, planted, p_model, p_base
            )
    return _Evaluated(evaluation, split, last_day, test)


def _roc_auc_on(test: FeatureFrame) -> Callable[[bytes], float]:
    """An artifact's ROC-AUC on these test users (the registry's paired comparison)."""

    def score(artifact: bytes) -> float:
        model = ChurnModel.loads(artifact)
        if tuple(model.features) != USER_FEATURES:
            raise ValueError("the version was fitted on other features")
        return float(roc_auc_score(test.churned, model.probability(test.x)))

    return score


async def train_churn(db: Database, settings: MlSettings) -> ChurnTraining:
    """Evaluate, fit the version to register on every cut-off whose outcome is known
    (with the evaluation's hyper-parameters, calibrated on the newest cut-off), register it,
    then score the users at risk as of the newest feature day with whichever version is
    active.

    Promotion is paired: the version to register and the active one are both scored on
    the evaluation's test users (`test_roc_auc`, `active_test_roc_auc`), and the new one is
    promoted when no worse. Neither has seen those users' outcomes: the new one's trees
    were fitted on cut-offs whose outcomes closed by the test cut-off, and its calibration,
    fitted on the test cut-off, is monotone, so it cannot change a ranking (nor ROC-AUC);
    any earlier version was fitted earlier still."""
    horizon, window = settings.churn_horizon_days, settings.churn_active_window_days
    async with db.transaction() as conn:
        done = await _evaluate(conn, settings)
        evaluation, split, last_day = done.evaluation, done.split, done.last_day
        fit = at_risk(
            await labelled_rows(conn, [*split.fit, split.calibrate], horizon_days=horizon), window
        )
        calibrate = at_risk(await labelled_rows(conn, [split.test], horizon_days=horizon), window)
    params = evaluation.tuning["params"]
    same_split = _roc_auc_on(done.test)

    def fit_and_score() -> tuple[ChurnModel, float]:
        fitted = fit_churn_model(fit, calibrate, params)
        return fitted, same_split(fitted.dumps())

    model, test_roc_auc = await asyncio.to_thread(fit_and_score)
    metrics = {**evaluation.model, **{f"baseline_{k}": v for k, v in evaluation.baseline.items()},
               "test_roc_auc": test_roc_auc}  # fmt: skip
    if evaluation.planted is not None:
        metrics |= {f"planted_{k}": v for k, v in evaluation.planted["model"].items()}
        metrics |= {f"planted_baseline_{k}": v for k, v in evaluation.planted["baseline"].items()}
    async with db.transaction() as conn:
        registered = await register_model(
            conn, MODEL_NAME, metrics=metrics, primary_metric="test_roc_auc",
            params={**params, "horizon_days": horizon, "active_window_days": window,
                    "calibration": "sigmoid", "evaluation_split": evaluation.split},
            artifact=model.dumps(), artifact_format=ARTIFACT_FORMAT,
            data_from=split.fit[0], data_to=last_day, score_active=same_split,
        )  # fmt: skip
        version, active = await serving_model(conn, registered, model, ChurnModel.loads)
        frame = at_risk(await rows_as_of(conn, last_day), window)
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
