"""Background work of the ML capability, named and queued by the convention in
`core/job_queue.py`: hourly, a stored setlist prediction for every show of the next two
weeks, so that every played show has a model prediction to score."""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import hold_task_lock
from mysetlist.core.run_log import job_run
from mysetlist.core.runtime import current
from mysetlist.ml.features.nightly import register_user_model_tasks
from mysetlist.ml.recommendations.nightly import register_recommender_tasks
from mysetlist.ml.setlists.prediction_service import predict_upcoming

log = logging.getLogger(__name__)
QUEUE = "ml"
PREDICT_UPCOMING = "ml.predict_upcoming_setlists"


def register(app: procrastinate.App, settings: Settings) -> None:
    register_user_model_tasks(app)  # feature store, then churn and engagement training
    register_recommender_tasks(app)  # the artist recommender, after each daily ETL run

    @app.periodic(cron="23 * * * *", periodic_id=PREDICT_UPCOMING)
    @app.task(name=PREDICT_UPCOMING, queue=QUEUE, queueing_lock=PREDICT_UPCOMING, pass_context=True)
    async def predict_upcoming_setlists(context: procrastinate.JobContext, timestamp: int) -> None:
        db = current().db
        async with hold_task_lock(db, PREDICT_UPCOMING) as held:
            if not held:
                log.info("%s skipped: the previous run is still going", PREDICT_UPCOMING)
                return
            async with job_run(db, PREDICT_UPCOMING, job_id=context.job.id) as run:
                predicted, skipped = await predict_upcoming(db)
                run.rows = predicted
                run.details = {"skipped_no_history": skipped}
