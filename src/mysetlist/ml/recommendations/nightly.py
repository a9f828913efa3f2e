"""`ml.train_recommenders`: after each daily ETL run, train and register the artist
recommender. Periodic (RECOMMEND_TRAIN_CRON, hourly by default) and gated on the ETL's own
record, so it follows the daily run whenever that finishes (late, retried or by hand) and
is a cheap no-op otherwise; an advisory task lock and a run-log row like every task."""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.job_queue import hold_task_lock
from mysetlist.core.run_log import job_run
from mysetlist.core.runtime import current
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.recommendations.training import MODEL_NAME, train_recommenders

log = logging.getLogger(__name__)
QUEUE = "ml"
TRAIN_RECOMMENDERS = "ml.train_recommenders"
_PACKAGE = "mysetlist.ml.recommendations"


def register_recommender_tasks(app: procrastinate.App) -> None:
    settings = load_ml_settings()

    @app.periodic(cron=settings.train_cron, periodic_id=TRAIN_RECOMMENDERS)
    @app.task(
        name=TRAIN_RECOMMENDERS, queue=QUEUE, queueing_lock=TRAIN_RECOMMENDERS, pass_context=True
    )
    async def train_recommender(context: procrastinate.JobContext, timestamp: int) -> None:
        from mysetlist.core.db import read_sql

        db = current().db
        async with hold_task_lock(db, TRAIN_RECOMMENDERS) as held:
            if not held:
                log.info("%s skipped: the previous run is still going", TRAIN_RECOMMENDERS)
                return
            due = await db.fetch_one(read_sql(_PACKAGE, "training_due.sql"), {"name": MODEL_NAME})
            if due is None or not due["due"]:
                return
            async with job_run(db, TRAIN_RECOMMENDERS, job_id=context.job.id) as run:
                registered = await train_recommenders(db, settings)
                if registered is None:
                    run.details = {"skipped": "no interactions yet"}
                    return
                v = registered.version
                run.rows = int(v.params.get("dataset", {}).get("interactions", 0))
                run.details = {"version": v.version, "activated": registered.activated,
                               "decision": v.decision, "metrics": v.metrics}  # fmt: skip
