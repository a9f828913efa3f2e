"""The ETL pipeline: Extract → Transform → Load → Post-processing for a day range.

A run is one row in `analytics.etl_runs`. Whoever executes it (a procrastinate worker, the
CLI, a test) calls `execute`, which:

1. takes the run lock on a *control* connection and claims the run's row (`claiming`);
2. resolves the day range and snapshot (`ranges`);
3. loads each day in one transaction on `parallelism` work connections (`day_loads`) and
   moves the watermark; an incremental run starts the steps that read no day-grained table
   (`steps.alongside_days`) beside its day stage, on a connection of their own;
4. runs the rollups side by side in waves (`steps.waves`, `rollups`), refreshes the
   materialized views, runs the data-quality checks (`quality`), ANALYZEs what it touched
   and (daily runs) the maintenance;
5. records per-step timings and row counts, the outcome and any error (`errors`).

Every statement has `statement_timeout` = ETL_TIMEOUT_MS; connection-level failures
surface as `EtlTransient` so the job queue retries the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson
import psycopg

from mysetlist.core.db import connect
from mysetlist.warehouse import (
    backfill,
    claiming,
    day_loads,
    maintenance,
    quality,
    ranges,
    rollups,
)
from mysetlist.warehouse.claiming import RunRequest
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.errors import (
    EtlBusy,
    EtlCancelled,
    EtlFailed,
    EtlTransient,
    describe,
    is_transient,
    most_telling,
)
from mysetlist.warehouse.run_state import Connection, Progress, RunState
from mysetlist.warehouse.sql_files import query
from mysetlist.warehouse.steps import DAY_STEPS, ROLLUP_STEPS, alongside_days, waves

log = logging.getLogger(__name__)

CONTROL_APP = "mysetlist-etl-control"

# The pipeline's public face: what callers (jobs, CLI, API) execute and catch.
__all__ = [
    "EtlBusy",
    "EtlCancelled",
    "EtlFailed",
    "EtlTransient",
    "RunRequest",
    "RunResult",
    "execute",
    "run_scheduled_incremental",
]


# A run's quality checks: not run (yet, or not among its steps), all passed, some failed.
ChecksStatus = Literal["not_run", "passed", "failed"]


@dataclass
class RunResult:
    run_id: int
    status: str
    checks_status: ChecksStatus
    checks_failed: int
    from_day: date | None
    to_day: date | None
    days: int
    duration_ms: float
    step_timings: dict[str, dict[str, float]]
    error: str | None = None


async def _control(database_url: str) -> Connection:
    return await connect(database_url, application_name=CONTROL_APP, autocommit=True)


async def has_new_events(database_url: str) -> bool:
    conn = await _control(database_url)
    try:
        return await ranges.has_new_events(conn)
    finally:
        await conn.close()


async def initial_load_pending(database_url: str, config: EtlConfig) -> bool:
    conn = await _control(database_url)
    try:
        return await ranges.initial_load_pending(conn, config)
    finally:
        await conn.close()


async def run_scheduled_incremental(database_url: str, config: EtlConfig) -> RunResult | None:
    """The every-few-minutes run. On a warehouse no daily run has loaded yet it is that
    daily run (the initial load of ETL_INITIAL_DAYS), rather than reloading today while
    the past stays empty and the freshness check fails until the first nightly run.
    Otherwise an incremental run, or nothing when no event arrived since the last one."""
    if await initial_load_pending(database_url, config):
        log.info("the warehouse was never loaded: running the initial daily load now")
        return await execute(
            database_url, config, request=RunRequest(trigger="schedule", mode="daily")
        )
    if not await has_new_events(database_url):
        return None
    return await execute(
        database_url, config, request=RunRequest(trigger="incremental", mode="incremental")
    )


async def execute(
    database_url: str,
    config: EtlConfig,
    *,
    run_id: int | None = None,
    request: RunRequest | None = None,
    progress: Progress | None = None,
    wait_for_lock_s: float = 0.0,
    prepare: Callable[[Connection], Awaitable[None]] | None = None,
) -> RunResult | None:
    """Execute a queued run (`run_id`) or a new one (`request`). Returns None when the
    queued run was cancelled before it started. Raises EtlBusy when another run holds the
    lock (after waiting up to `wait_for_lock_s`), EtlTransient/EtlFailed on failure.
    `prepare` runs on the control connection under the run lock before the run is
    claimed (a rebuild clears the warehouse there, so no other run sees it half-empty)."""
    if (run_id is None) == (request is None):
        raise ValueError("give exactly one of run_id and request")
    control = await _control(database_url)
    try:
        async with claiming.run_lock(
            control, run_id=run_id, wait_for_lock_s=wait_for_lock_s
        ) as locked:
            if not locked:
                return None
            if prepare is not None:
                await prepare(control)
            row = await claiming.claim(control, run_id, request)
            if row is None:
                return None
            run = _Run(RunState(control, row, config, progress), database_url)
            return await run.go()
    finally:
        await control.close()


@dataclass
class _Outcome:
    checks_status: ChecksStatus = "not_run"
    checks_failed: int = 0
    maintenance: dict[str, Any] | None = None


class _Run:
    """One claimed run, from its range to its recorded outcome."""

    def __init__(self, state: RunState, database_url: str) -> None:
        self.state = state
        self.database_url = database_url
        self.work: list[Connection] = []

    async def go(self) -> RunResult:
        state = self.state
        started = time.monotonic()
        status, error = "succeeded", None
        outcome = _Outcome()
        transient = False
        try:
            await ranges.resolve_range(state)
            self.work = await day_loads.open_work_connections(state, self.database_url)
            # Indexes a killed first backfill left unbuilt, before anything reads them.
            await backfill.build_deferred_indexes(self.work)
            day_steps = [s for s in state.steps if s in DAY_STEPS]
            later = [s for s in state.steps if s not in DAY_STEPS]
            if state.incremental and not state.days:
                later = []  # nothing new arrived
            if day_steps and state.days:
                early = alongside_days(later, incremental=state.incremental)
                if len(self.work) < 2:
                    early = []
                later = [s for s in later if s not in early]
                state.fresh = await backfill.defer_indexes(state, self.work[0], day_steps)
                await self._load_days(day_steps, early, outcome)
                if state.fresh:
                    await self._build_indexes()
                await ranges.advance(state)
            for wave in waves(later, incremental=state.incremental):
                await state.check_cancel()
                await state.save_progress("+".join(wave))
                await self._run_wave(wave, outcome)
        except BaseException as exc:  # record every way out, then re-raise if needed
            error = describe(exc)
            if isinstance(exc, EtlCancelled) or await state.cancel_requested():
                status, error = "cancelled", None
            else:
                status = "failed"
                transient = is_transient(exc)
                log.error("ETL run %s failed: %s", state.run_id, error)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                outcome.maintenance = None
                await self._finish(status, error, started, outcome)
                raise
        finally:
            await day_loads.close_work_connections(self.work)
        await self._finish(status, error, started, outcome)
        result = RunResult(
            run_id=state.run_id,
            status=status,
            checks_status=outcome.checks_status,
            checks_failed=outcome.checks_failed,
            from_day=state.days[0] if state.days else state.row.get("from_day"),
            to_day=state.days[-1] if state.days else state.row.get("to_day"),
            days=len(state.days),
            duration_ms=(time.monotonic() - started) * 1000,
            step_timings={k: v.as_json() for k, v in state.timings.items()},
            error=error,
        )
        if status == "failed":
            raise (EtlTransient if transient else EtlFailed)(error or "ETL run failed")
        return result

    async def _load_days(self, day_steps: list[str], early: list[str], outcome: _Outcome) -> None:
        """The day stage; the `early` steps (steps.alongside_days) side by side with it, on
        the last work connection."""
        if not early:
            await day_loads.load_days(self.state, self.work, day_steps)
            return

        async def alongside(conn: Connection) -> None:
            for step in early:
                await self._run_step(step, conn, outcome)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(day_loads.load_days(self.state, self.work[:-1], day_steps))
                group.create_task(alongside(self.work[-1]))
        except BaseExceptionGroup as eg:
            raise most_telling(eg) from None

    async def _build_indexes(self) -> None:
        """A first backfill's indexes, built before the rollups read the tables; each
        table's build time counts in the step that loads it."""
        state = self.state
        await state.save_progress("build indexes")
        state.tick("build indexes", 0, 1)
        for table, ms in (await backfill.build_deferred_indexes(self.work)).items():
            state.timing(backfill.step_of(table)).ms += ms
        state.tick("build indexes", 1, 1)

    async def _run_wave(self, wave: list[str], outcome: _Outcome) -> None:
        if len(wave) == 1 or len(self.work) == 1:
            for step in wave:
                await self._run_step(step, self.work[0], outcome)
            return
        pending = list(wave)

        async def worker(conn: Connection) -> None:
            while pending:
                await self._run_step(pending.pop(0), conn, outcome)

        try:
            async with asyncio.TaskGroup() as group:
                for conn in self.work[: len(wave)]:
                    group.create_task(worker(conn))
        except BaseExceptionGroup as eg:
            raise most_telling(eg) from None

    async def _run_step(self, step: str, conn: Connection, outcome: _Outcome) -> None:
        state = self.state
        state.tick(step, 0, 1)
        t0 = time.perf_counter()
        if step in ROLLUP_STEPS:
            await rollups.rollup(state, step, conn)
        elif step == "refresh_views":
            await rollups.refresh_views(state, conn)
        elif step == "quality_checks":
            outcome.checks_failed = await self._quality_checks()
            outcome.checks_status = "failed" if outcome.checks_failed else "passed"
        elif step == "analyze":
            await rollups.analyze(state, conn)
        elif step == "maintenance":
            outcome.maintenance = await maintenance.run(
                conn, state.config, today=await state.today()
            )
        state.timing(step).ms += (time.perf_counter() - t0) * 1000
        state.tick(step, 1, 1)

    async def _quality_checks(self) -> int:
        state = self.state
        rng = state.day_range()
        results = await quality.run_checks(
            self.work[0],
            lo=rng[0] if rng else None,
            hi=rng[1] if rng else None,
            snapshot=state.snapshot,
            voting_full="voting_patterns_warehouse" in state.steps and state.voting_full,
            incremental=state.incremental,
            other=self.work[1] if len(self.work) > 1 else None,
        )
        await quality.store(state.control, state.run_id, results)
        state.timing("quality_checks").rows += len(results)
        return sum(1 for r in results if not r.passed)

    async def _finish(
        self, status: str, error: str | None, started: float, outcome: _Outcome
    ) -> None:
        state = self.state
        try:
            await state.control.execute(
                query("run_finish"),
                {
                    "status": status,
                    "error": error,
                    "duration_ms": (time.monotonic() - started) * 1000,
                    "days_done": state.days_done,
                    "rows_written": state.rows_written,
                    "step_timings": state.timings_json(),
                    "checks_status": outcome.checks_status,
                    "checks_failed": outcome.checks_failed,
                    "maintenance": (
                        orjson.dumps(outcome.maintenance).decode() if outcome.maintenance else None
                    ),
                    "run_id": state.run_id,
                },
            )
        except psycopg.Error:
            log.exception("could not record the outcome of ETL run %s", state.run_id)
