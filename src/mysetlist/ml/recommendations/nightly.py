"""`ml.train_recommenders`: after each daily ETL run, train and register the artist
recommender. Periodic (RECOMMEND_TRAIN_CRON, hourly by default) and gated on the ETL's own
record, so it follows the daily run whenever that finishes (late, retried or by hand) and
is a cheap no-op otherwise; an advisory task lock and a run-log row like every task."""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.db import read_sql
from mysetlist.core.job_queue import periodic_task
from mysetlist.core.run_log import RunRecord
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.recommendations.training import MODEL_NAME, train_recommenders

log = logging.getLogger(__name__)
QUEUE = "ml"
TRAIN_RECOMMENDERS = "ml.train_recommenders"
_PACKAGE = "mysetlist.ml.recommendations"


def register_recommender_tasks(app: procrastinate.App) -> None:
    settings = load_ml_settings()

    async def etl_ran_since_training(runtime: Runtime) -> bool:
        due = await runtime.db.fetch_one(
            read_sql(_PACKAGE, "training_due.sql"), {"name": MODEL_NAME}
        )
        return due is not None and bool(due["due"])

    @periodic_task(app, name=TRAIN_RECOMMENDERS, queue=QUEUE, cron=settings.train_cron,
                   gate=etl_ran_since_training)  # fmt: skip
    async def train_recommender(runtime: Runtime, run: RunRecord) -> None:
        registered = await train_recommenders(runtime.db, settings)
        if registered is None:
            run.details = {"skipped": "no interactions yet"}
            return
        v = registered.version
        run.rows = int(v.params.get("dataset", {}).get("interactions", 0))
        run.details = {"version": v.version, "activated": registered.activated,
                       "decision": v.decision, "metrics": v.metrics}  # fmt: skip
