"""Background work of the ML capability, named and queued by the convention in
`core/job_queue.py`: hourly, a stored setlist prediction for every show of the next two
weeks, so that every played show has a model prediction to score; nightly, the cross-artist
setlist ranker retrained on every played show and registered."""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import periodic_task
from mysetlist.core.run_log import RunRecord
from mysetlist.core.runtime import Runtime
from mysetlist.ml.features.nightly import register_user_model_tasks
from mysetlist.ml.recommendations.nightly import register_recommender_tasks
from mysetlist.ml.setlists.prediction_cache import prediction_cache
from mysetlist.ml.setlists.prediction_service import predict_upcoming
from mysetlist.ml.setlists.training import train_setlist_ranker

log = logging.getLogger(__name__)
QUEUE = "ml"
PREDICT_UPCOMING = "ml.predict_upcoming_setlists"
TRAIN_SETLIST_RANKER = "ml.train_setlist_ranker"


def register(app: procrastinate.App, settings: Settings) -> None:
    register_user_model_tasks(app)  # feature store, then churn and engagement training
    register_recommender_tasks(app)  # the artist recommender, after each daily ETL run

    @periodic_task(app, name=PREDICT_UPCOMING, queue=QUEUE, cron="23 * * * *")
    async def predict_upcoming_setlists(runtime: Runtime, run: RunRecord) -> None:
        predicted, skipped = await predict_upcoming(runtime.db, cache=prediction_cache(runtime))
        run.rows = predicted
        run.details = {"skipped_no_history": skipped}

    @periodic_task(app, name=TRAIN_SETLIST_RANKER, queue=QUEUE, cron="47 4 * * *")
    async def train_setlist_ranker_nightly(runtime: Runtime, run: RunRecord) -> None:
        registered = await train_setlist_ranker(runtime.db)
        run.details = (
            {"trained": False}
            if registered is None
            else {"version": registered.version.version, "decision": registered.version.decision}
        )
