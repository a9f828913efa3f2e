"""The nightly chain after the ETL: `ml.build_features` fills the feature store for the
days the ETL closed, then (when it built any) defers `ml.train_user_models`, which
evaluates, registers and applies the churn and engagement models.

`ml.build_features` is periodic (ML_FEATURES_CRON, hourly by default) rather than tied to
the ETL's clock: it reads the ETL's watermark, so it follows the daily run whenever that
finishes (late, retried or run by hand) and is a cheap no-op otherwise. Both tasks hold an
advisory task lock and leave a row in the run log (core/job_queue.py, core/run_log.py).
"""

from __future__ import annotations

import logging
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from mysetlist.core.db import Database
from mysetlist.core.job_queue import (
    defer_in_transaction,
    hold_task_lock,
    job_runtime,
    periodic_task,
)
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import MlSettings, load_ml_settings
from mysetlist.ml.features.feature_store import build_pending
from mysetlist.ml.features.training_data import NotEnoughHistory

log = logging.getLogger(__name__)
QUEUE = "ml"
BUILD_FEATURES = "ml.build_features"
TRAIN_USER_MODELS = "ml.train_user_models"


async def train_user_models(db: Database, settings: MlSettings) -> dict[str, Any]:
    """Train, register and apply the engagement and churn models; what each did."""
    from mysetlist.ml.churn.service import train_churn
    from mysetlist.ml.engagement.service import train_engagement

    engagement = await train_engagement(db)
    churn = await train_churn(db, settings)
    return {
        "engagement": {"version": engagement.version, "activated": engagement.activated,
                       "decision": engagement.decision, "mae": engagement.evaluation.model_mae,
                       "naive_mae": engagement.evaluation.naive_mae,
                       "forecasts": engagement.forecasts},
        "churn": {"version": churn.version, "activated": churn.activated,
                  "decision": churn.decision, "roc_auc": churn.evaluation.model["roc_auc"],
                  "baseline_roc_auc": churn.evaluation.baseline["roc_auc"],
                  "scored": churn.scored, "buckets": churn.buckets},
    }  # fmt: skip


def register_user_model_tasks(app: procrastinate.App) -> None:
    settings = load_ml_settings()

    @periodic_task(app, name=BUILD_FEATURES, queue=QUEUE, cron=settings.features_cron)
    async def build_features(runtime: Runtime, run: RunRecord) -> None:
        result = await build_pending(
            runtime.db,
            backfill_days=settings.feature_backfill_days,
            lookback_days=settings.feature_lookback_days,
        )
        run.rows = sum(result.rows.values())
        run.details = {"days": [d.isoformat() for d in result.days], **result.rows}
        if result.days:
            run.details["training_job_id"] = await _defer_training(runtime.db)

    @app.task(
        name=TRAIN_USER_MODELS, queue=QUEUE, queueing_lock=TRAIN_USER_MODELS, pass_context=True
    )
    async def train(context: procrastinate.JobContext) -> None:
        db = job_runtime(context).db
        async with hold_task_lock(db, TRAIN_USER_MODELS) as held:
            if not held:
                log.info("%s skipped: the previous run is still going", TRAIN_USER_MODELS)
                return
            async with job_run(db, TRAIN_USER_MODELS, job_id=context.job.id) as run:
                try:
                    run.details = await train_user_models(db, load_ml_settings())
                except NotEnoughHistory as exc:  # a young install: nothing to learn yet
                    run.details = {"skipped": str(exc)}
                    return
                run.rows = int(run.details["churn"]["scored"])


async def _defer_training(db: Database) -> int | None:
    """Queue training once (a training job already waiting will see these features)."""
    try:
        async with db.transaction() as conn:
            return await defer_in_transaction(
                conn, TRAIN_USER_MODELS, queue=QUEUE, queueing_lock=TRAIN_USER_MODELS
            )
    except AlreadyEnqueued:
        return None
