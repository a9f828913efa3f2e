"""Background work of the notify capability, named and queued by the convention in
`core/job_queue.py`:

- `notify.deliver`: deferred by every send (in its transaction); drains due deliveries.
- `notify.deliver_due`: every 15 s, the same drain for what came due later (quiet hours
  ending, retries, digests) and for rows a killed worker left behind.
- `notify.send_digests`: every 5 minutes, the digests of periods that ended.
- `notify.daily_analytics`: every 15 minutes, notification_analytics for today and yesterday.
- `notify.feed_events`: every 15 minutes, vote summaries, show reminders and new-show
  announcements from the data (notify/event_feeds.py; idempotent).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.db import Database
from mysetlist.core.job_queue import periodic_task
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.runtime import Runtime, current
from mysetlist.notify import analytics, digests, event_feeds
from mysetlist.notify.config import load_notify_settings
from mysetlist.notify.delivery import Deliverer

log = logging.getLogger(__name__)
QUEUE = "notify"
DELIVER = "notify.deliver"
DELIVER_DUE = "notify.deliver_due"
SEND_DIGESTS = "notify.send_digests"
DAILY_ANALYTICS = "notify.daily_analytics"
FEED_EVENTS = "notify.feed_events"

_deliverer: Deliverer | None = None


def process_deliverer(runtime: Runtime) -> Deliverer:
    """This process's deliverer (provider connections are kept between jobs)."""
    global _deliverer
    if _deliverer is None:
        settings = load_notify_settings()
        _deliverer = Deliverer.build(
            settings, runtime.cipher, runtime.settings.effective_encryption_key,
            runtime.redis_url, key_prefix=runtime.settings.redis_key_prefix,
        )  # fmt: skip
    return _deliverer


async def drain(job_id: int, task: str) -> None:
    runtime = current()
    async with job_run(runtime.db, task, trigger="queue", job_id=job_id) as run:
        run.rows = await process_deliverer(runtime).drain(runtime.db)


def register(app: procrastinate.App, settings: Settings) -> None:
    @app.task(name=DELIVER, queue=QUEUE, pass_context=True)
    async def deliver(context: procrastinate.JobContext) -> None:
        assert context.job.id is not None
        await drain(context.job.id, DELIVER)

    @app.periodic(cron="* * * * * */15", periodic_id=DELIVER_DUE)
    @app.task(name=DELIVER_DUE, queue=QUEUE, queueing_lock=DELIVER_DUE, pass_context=True)
    async def deliver_due(context: procrastinate.JobContext, timestamp: int) -> None:
        assert context.job.id is not None
        await drain(context.job.id, DELIVER_DUE)

    @periodic_task(app, name=SEND_DIGESTS, queue=QUEUE, cron="*/5 * * * *")
    async def send_digests(db: Database, run: RunRecord) -> None:
        run.rows = await digests.send_due_digests(db)

    @periodic_task(app, name=DAILY_ANALYTICS, queue=QUEUE, cron="*/15 * * * *")
    async def daily_analytics(db: Database, run: RunRecord) -> None:
        since = (datetime.now(UTC) - timedelta(days=1)).date()
        run.rows = await analytics.refresh_daily(db, since=since)

    @periodic_task(app, name=FEED_EVENTS, queue=QUEUE, cron="*/15 * * * *")
    async def feed_events(db: Database, run: RunRecord) -> None:
        run.rows = await event_feeds.run_all(db, load_notify_settings())
