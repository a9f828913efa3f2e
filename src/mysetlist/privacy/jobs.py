"""Background work of the privacy capability (naming and queues per core/job_queue.py):
each erasure request's job, a sweep that finishes requests a crashed worker left, and the
nightly retention."""

from __future__ import annotations

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_runtime, periodic_task
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.config import load_privacy_settings
from mysetlist.privacy.erasure import ERASE_TASK, QUEUE, erase, resume_pending_erasures
from mysetlist.privacy.retention import anonymise_expired_events, delete_old_notifications

RESUME_TASK = "privacy.resume_erasures"
RETENTION_TASK = "privacy.retention"


def register(app: procrastinate.App, settings: Settings) -> None:
    privacy = load_privacy_settings()

    @app.task(
        name=ERASE_TASK,
        queue=QUEUE,
        pass_context=True,
        retry=procrastinate.RetryStrategy(max_attempts=20, exponential_wait=2),
    )
    async def erase_user(context: procrastinate.JobContext, request_id: int) -> None:
        rt = job_runtime(context)
        async with job_run(rt.db, ERASE_TASK, trigger="request", job_id=context.job.id) as run:
            status = await erase(
                rt.db, rt.redis, rt.cipher, request_id, prefix=rt.settings.redis_key_prefix
            )
            run.details = {"erasure_request": request_id, "status": (status or {}).get("status")}

    # A sweep that finds the previous one still going does nothing and logs no run.
    @periodic_task(app, name=RESUME_TASK, queue=QUEUE, cron="*/5 * * * *")
    async def resume_erasures(rt: Runtime, run: RunRecord) -> None:
        finished = await resume_pending_erasures(
            rt.db, rt.redis, rt.cipher, prefix=rt.settings.redis_key_prefix
        )
        run.rows = len(finished)

    @periodic_task(app, name=RETENTION_TASK, queue=QUEUE, cron="41 3 * * *")
    async def retention(rt: Runtime, run: RunRecord) -> None:
        anonymised = await anonymise_expired_events(rt.db, privacy)
        notifications = await delete_old_notifications(rt.db, privacy)
        run.rows = sum(anonymised.values()) + notifications
        run.details = {"anonymised": anonymised, "notifications_deleted": notifications}
