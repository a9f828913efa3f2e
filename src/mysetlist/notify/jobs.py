"""Background work of the notify capability, named and queued by the convention in
`core/job_queue.py`:

- `notify.deliver`: deferred by every send (in its transaction); drains due deliveries.
- `notify.deliver_due`: every 15 s, the same drain for what came due later (quiet hours
  ending, retries, digests) and for rows a killed worker left behind.
- `notify.send_digests`: every 5 minutes, the digests of periods that ended.
- `notify.daily_analytics`: every 15 minutes, notification_analytics for today and yesterday.
- `notify.feed_events`: every 15 minutes, vote summaries, show reminders and new-show
  announcements from the data (delivery/event_feeds.py; idempotent).

The names are `tasks.py`'s, which the defer sites use too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import procrastinate

from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_runtime, periodic_task
from mysetlist.core.run_log import RunRecord, job_run
from mysetlist.core.runtime import Runtime
from mysetlist.notify.config import load_notify_settings
from mysetlist.notify.delivery import analytics, digests, event_feeds
from mysetlist.notify.delivery.drain import Deliverer
from mysetlist.notify.tasks import (
    DAILY_ANALYTICS,
    DELIVER,
    DELIVER_DUE,
    FEED_EVENTS,
    QUEUE,
    SEND_DIGESTS,
)

log = logging.getLogger(__name__)


class WorkerDeliverer:
    """A worker's deliverer, built on its first drain for the worker's runtime and kept
    between jobs (provider connections, circuit breakers)."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self._deliverer: Deliverer | None = None

    def of(self, runtime: Runtime) -> Deliverer:
        if self._deliverer is None or self._runtime is not runtime:
            self._runtime = runtime
            self._deliverer = Deliverer.build(
                load_notify_settings(), runtime.cipher, runtime.settings.effective_encryption_key,
                runtime.redis_url, key_prefix=runtime.settings.redis_key_prefix,
            )  # fmt: skip
        return self._deliverer


def register(app: procrastinate.App, settings: Settings) -> None:
    deliverer = WorkerDeliverer()

    @app.task(name=DELIVER, queue=QUEUE, pass_context=True)
    async def deliver(context: procrastinate.JobContext) -> None:
        runtime = job_runtime(context)
        async with job_run(runtime.db, DELIVER, trigger="queue", job_id=context.job.id) as run:
            run.rows = await deliverer.of(runtime).drain(runtime.db)

    # No task lock: drains exclude each other row by row (claims with SKIP LOCKED).
    @periodic_task(app, name=DELIVER_DUE, queue=QUEUE, cron="* * * * * */15", lock=False,
                   trigger="queue")  # fmt: skip
    async def deliver_due(runtime: Runtime, run: RunRecord) -> None:
        run.rows = await deliverer.of(runtime).drain(runtime.db)

    @periodic_task(app, name=SEND_DIGESTS, queue=QUEUE, cron="*/5 * * * *")
    async def send_digests(runtime: Runtime, run: RunRecord) -> None:
        run.rows = await digests.send_due_digests(runtime.db)

    @periodic_task(app, name=DAILY_ANALYTICS, queue=QUEUE, cron="*/15 * * * *")
    async def daily_analytics(runtime: Runtime, run: RunRecord) -> None:
        since = (datetime.now(UTC) - timedelta(days=1)).date()
        run.rows = await analytics.refresh_daily(runtime.db, since=since)

    @periodic_task(app, name=FEED_EVENTS, queue=QUEUE, cron="*/15 * * * *")
    async def feed_events(runtime: Runtime, run: RunRecord) -> None:
        run.rows = await event_feeds.run_all(runtime.db, load_notify_settings())
