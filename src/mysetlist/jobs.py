"""The job queue: one procrastinate App with every capability's tasks and schedules.

A capability that has background work exposes `register(app, settings)` in its `jobs`
module; this file only gathers them. Task names, queues and overlap follow the
conventions in `core/job_queue.py`.
"""

from __future__ import annotations

import logging

import procrastinate
from procrastinate.app import WorkerOptions

from mysetlist.capabilities import capability_modules
from mysetlist.core import run_log
from mysetlist.core.config import Settings
from mysetlist.core.job_queue import job_app, run_worker_until_stopped, worker_context
from mysetlist.core.runtime import Runtime, open_runtime

log = logging.getLogger(__name__)


def make_job_app(database_url: str, settings: Settings) -> procrastinate.App:
    app = job_app(database_url)
    run_log.register(app)
    for module in capability_modules("jobs"):
        module.register(app, settings)
    return app


# How long a stopping worker lets its running jobs finish: a drain chunk or an ETL step
# finishes well inside it; past it they are cancelled and picked up again.
SHUTDOWN_GRACE_SECONDS = 10.0


async def run_worker(
    database_url: str,
    redis_url: str,
    settings: Settings,
    *,
    concurrency: int = 4,
    runtime: Runtime | None = None,
    own_process: bool = False,
) -> None:
    """Run a worker (and the periodic scheduler) until cancelled. Its tasks receive
    `runtime` through the job context (the API's own, when it runs a worker in-process),
    or one this worker opens and closes.

    `own_process` (`mysetlist worker`): SIGTERM/SIGINT stop it the way procrastinate
    does it, gracefully — no new job, the running ones get `SHUTDOWN_GRACE_SECONDS` to
    finish, then are cancelled (each is safe to rerun); a second signal exits at once. In
    the API's process the server owns the signals."""
    owned = runtime is None
    if runtime is None:
        runtime = await open_runtime(settings, database_url, redis_url)
    # The worker LISTENs for new jobs: on the direct URL, never through a transaction pooler.
    app = make_job_app(runtime.direct_url, settings)
    try:
        options: WorkerOptions = {
            "concurrency": concurrency,
            "additional_context": worker_context(runtime),
        }
        if own_process:
            options["shutdown_graceful_timeout"] = SHUTDOWN_GRACE_SECONDS
        async with app.open_async():
            # Started again when its database went away (a PostgreSQL restart).
            await run_worker_until_stopped(app, options, handle_signals=own_process)
    finally:
        if owned:
            await runtime.close()
