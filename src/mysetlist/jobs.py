"""The job queue: one procrastinate App with every capability's tasks and schedules.

A capability that has background work exposes `register(app, settings)` in its `jobs`
module; this file only gathers them. Task names, queues and overlap follow the
conventions in `core/job_queue.py`.
"""

from __future__ import annotations

import logging

import procrastinate

from mysetlist.capabilities import capability_modules
from mysetlist.core import run_log
from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_app, worker_context
from mysetlist.core.runtime import Runtime, open_runtime

log = logging.getLogger(__name__)


def make_job_app(database_url: str, settings: Settings) -> procrastinate.App:
    app = job_app(database_url)
    run_log.register(app)
    for module in capability_modules("jobs"):
        module.register(app, settings)
    return app


async def run_worker(
    database_url: str,
    redis_url: str,
    settings: Settings,
    *,
    concurrency: int = 4,
    runtime: Runtime | None = None,
) -> None:
    """Run a worker (and the periodic scheduler) until cancelled. Its tasks receive
    `runtime` through the job context (the API's own, when it runs a worker in-process),
    or one this worker opens and closes."""
    owned = runtime is None
    if runtime is None:
        runtime = await open_runtime(settings, database_url, redis_url)
    app = make_job_app(database_url, settings)
    try:
        async with app.open_async():
            await app.run_worker_async(
                concurrency=concurrency,
                install_signal_handlers=False,
                additional_context=worker_context(runtime),
            )
    finally:
        if owned:
            await runtime.close()
