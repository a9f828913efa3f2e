"""The ETL pipeline: Extract → Transform → Load → Post-processing for a day range.

A run is one row in `analytics.etl_runs`. Whoever executes it (a procrastinate worker, the
CLI, a test) calls `execute`, which:

1. opens a *control* connection and takes a session advisory lock, so at most one run
   executes at a time anywhere (a run whose process died has lost its lock, so its
   `running` row is recognised as abandoned and closed as failed);
2. resolves the day range (`daily`: from the watermark to yesterday, reloading
   `lookback_days` before it; `range`: the given `--from/--to`; `incremental`: the days of
   events received since the watermark, i.e. today's partial day and late arrivals);
3. opens `parallelism` *work* connections, records their backend pids in the run row (the
   cancel path calls `pg_cancel_backend` on them) and loads each day in **one
   transaction** — extract into a staging table, then every day-grained table — so a
   killed worker leaves no half-loaded day, and a rerun of a day replaces it whole;
4. runs the rollups (WAU/MAU, trending, voting accuracy, user behaviour), refreshes the
   materialized views concurrently, runs the data-quality checks, ANALYZEs what it touched
   and (daily runs) the maintenance;
5. records per-step timings and row counts, the outcome and any error.

Every statement has `statement_timeout` = ETL_CONFIG timeout (5 minutes); transient
errors (serialization failure, deadlock) are retried per day up to `max_retries` times with
exponential backoff; connection-level failures surface as `EtlTransient` so the job queue
retries the run.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.rows import dict_row

from mysetlist.core.db import read_sql
from mysetlist.warehouse import maintenance, quality
from mysetlist.warehouse.config import EtlConfig

log = logging.getLogger(__name__)

SQL_PACKAGE = "mysetlist.warehouse.sql"
LOCK_KEY = 0x45544C  # pg advisory lock held by the executing run ("ETL")
WATERMARK = "events"
INCREMENTAL_MARGIN = timedelta(minutes=2)  # in-flight commits around the watermark

# Steps in execution order, with the spec's phase for each.
DAY_STEPS = (
    "extract",
    "daily_user_stats",
    "user_engagement_warehouse",
    "artist_popularity_warehouse",
    "show_engagement_warehouse",
    "daily_platform_metrics",
)
ROLLUP_STEPS = (
    "voting_patterns_warehouse",
    "user_behavior_warehouse",
    "trending",
    "platform_windows",
)
POST_STEPS = ("refresh_views", "quality_checks", "analyze", "maintenance")
ALL_STEPS = DAY_STEPS + ROLLUP_STEPS + POST_STEPS
PHASES = {
    **{s: "extract" for s in DAY_STEPS[:1]},
    **{s: "transform_load" for s in DAY_STEPS[1:] + ROLLUP_STEPS},
    **{s: "post_processing" for s in POST_STEPS},
}
DEFAULT_STEPS = {
    "daily": [s for s in ALL_STEPS],
    "range": [s for s in ALL_STEPS if s != "maintenance"],
    # The materialized views are refreshed by the daily run, not every few minutes.
    # Autovacuum's ANALYZE keeps up with a few minutes of changes.
    "incremental": [s for s in ALL_STEPS if s not in ("refresh_views", "analyze", "maintenance")],
}
# The tables each step writes (ANALYZE targets).
STEP_TABLES = {
    "daily_user_stats": ["analytics.daily_user_stats"],
    "user_engagement_warehouse": ["analytics.user_engagement_warehouse"],
    "artist_popularity_warehouse": ["analytics.artist_popularity_warehouse"],
    "show_engagement_warehouse": ["analytics.show_engagement_warehouse"],
    "daily_platform_metrics": ["analytics.daily_platform_metrics"],
    "trending": ["analytics.artist_popularity_warehouse"],
    "voting_patterns_warehouse": ["analytics.voting_patterns_warehouse"],
    "user_behavior_warehouse": ["analytics.user_behavior_warehouse"],
    "refresh_views": ["analytics.cohort_retention_weekly", "analytics.genre_trends_daily"],
}
# After the day stage: the order steps are taken in (full runs / incremental runs).
POST_ORDER = (
    "voting_patterns_warehouse",
    "trending",
    "platform_windows",
    "user_behavior_warehouse",
    "refresh_views",
    "quality_checks",
    "analyze",
    "maintenance",
)
POST_ORDER_INCREMENTAL = (
    "voting_patterns_warehouse",
    "user_behavior_warehouse",
    "trending",
    "platform_windows",
    "refresh_views",
    "quality_checks",
    "analyze",
    "maintenance",
)
BARRIER_STEPS = {"quality_checks", "analyze", "maintenance"}
MATERIALIZED_VIEWS = ("analytics.cohort_retention_weekly", "analytics.genre_trends_daily")

Progress = Callable[[str, int, int], None]  # (step, done, total)


class EtlBusy(Exception):
    """Another run is queued or running."""


class EtlTransient(Exception):
    """The run failed for a reason worth retrying (connection lost, lock contention)."""


class EtlFailed(Exception):
    """The run failed; the error is recorded on the run."""


class EtlCancelled(Exception):
    """A cancel was requested for the run."""


@dataclass
class RunRequest:
    trigger: str  # schedule | incremental | api | cli
    mode: str  # daily | range | incremental
    from_day: date | None = None
    to_day: date | None = None
    steps: list[str] | None = None
    requested_by: str | None = None
    requested_by_role: str | None = None


@dataclass
class RunResult:
    run_id: int
    status: str
    checks_status: str
    checks_failed: int
    from_day: date | None
    to_day: date | None
    days: int
    duration_ms: float
    step_timings: dict[str, dict[str, float]]
    error: str | None = None


def normalise_steps(steps: Sequence[str] | None, mode: str) -> list[str]:
    """Validate and order steps; any day step brings `extract` with it."""
    if not steps:
        return list(DEFAULT_STEPS[mode])
    unknown = [s for s in steps if s not in ALL_STEPS]
    if unknown:
        raise ValueError(f"unknown ETL step(s): {', '.join(unknown)}")
    wanted = set(steps)
    if wanted & set(DAY_STEPS[1:]):
        wanted.add("extract")
    return [s for s in ALL_STEPS if s in wanted]


_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


def statements(name: str) -> list[str]:
    """The statements of sql/<name>.sql (split at a `;` that ends a line)."""
    parts = _STATEMENT_END.split(read_sql(SQL_PACKAGE, f"{name}.sql"))
    out = []
    for part in parts:
        code = "\n".join(
            line for line in part.splitlines() if line.strip() and not line.strip().startswith("--")
        )
        if code.strip():
            out.append(part.strip())
    return out


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


async def connect(database_url: str, *, application_name: str = "mysetlist-etl") -> Any:
    conn = await AsyncConnection.connect(
        database_url,
        autocommit=True,
        cursor_factory=AsyncClientCursor,
        application_name=application_name,
    )
    await conn.execute("SET TIME ZONE 'UTC'")
    return conn


async def _one(conn: Any, query: str, params: Any = None) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        row: dict[str, Any] | None = await cur.fetchone()
        return row


async def _all(conn: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return list(await cur.fetchall())


async def try_lock(conn: Any) -> bool:
    row = await _one(conn, "SELECT pg_try_advisory_lock(%s) AS ok", (LOCK_KEY,))
    return bool(row and row["ok"])


async def close_abandoned_if_idle(conn: Any) -> bool:
    """If no process holds the run lock, close `running` rows as abandoned — while holding
    the lock, so a run starting at that moment cannot be mistaken for a dead one.
    Returns whether the lock was free."""
    if not await try_lock(conn):
        return False
    try:
        await close_abandoned(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return True


async def close_abandoned(conn: Any, *, exclude: int | None = None) -> int:
    """Mark `running` rows failed when their process is gone. Caller holds the lock or has
    just seen it free."""
    cur = await conn.execute(
        """UPDATE analytics.etl_runs
              SET status = 'failed', finished_at = now(),
                  error = coalesce(error, 'abandoned: the process running it stopped')
            WHERE status = 'running' AND id IS DISTINCT FROM %s""",
        (exclude,),
    )
    return int(cur.rowcount or 0)


async def has_new_events(database_url: str) -> bool:
    """Whether events arrived since the incremental watermark (a cheap pre-check, so the
    every-few-minutes schedule does not record empty runs)."""
    conn = await connect(database_url, application_name="mysetlist-etl-control")
    try:
        row = await _one(
            conn,
            """SELECT (SELECT max(received_at) FROM analytics.user_events
                        WHERE created_at >= ((now() AT TIME ZONE 'UTC')::date - 1)
                                             ::timestamp AT TIME ZONE 'UTC') AS newest,
                      (SELECT last_received_at FROM analytics.etl_watermarks
                        WHERE pipeline = %s) AS last""",
            (WATERMARK,),
        )
    finally:
        await conn.close()
    if row is None or row["newest"] is None:
        return False
    return row["last"] is None or bool(row["newest"] > row["last"])


async def initial_load_pending(database_url: str, config: EtlConfig) -> bool:
    """Whether no daily run has ever loaded the warehouse although there are events before
    today within ETL_INITIAL_DAYS (a fresh install, before its first ETL_SCHEDULE_CRON)."""
    conn = await connect(database_url, application_name="mysetlist-etl-control")
    try:
        row = await _one(
            conn,
            """SELECT NOT EXISTS (SELECT 1 FROM analytics.etl_watermarks
                                   WHERE pipeline = %(wm)s AND last_full_day IS NOT NULL)
                      AND EXISTS (SELECT 1 FROM analytics.user_events
                                   WHERE created_at >= %(start)s AND created_at < %(end)s)
                      AS pending""",
            {
                "wm": WATERMARK,
                "start": datetime.now(UTC) - timedelta(days=config.initial_days + 1),
                "end": day_bounds(datetime.now(UTC).date())[0],
            },
        )
    finally:
        await conn.close()
    return bool(row and row["pending"])


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
) -> RunResult | None:
    """Execute a queued run (`run_id`) or a new one (`request`). Returns None when the
    queued run was cancelled before it started. Raises EtlBusy when another run holds the
    lock (after waiting up to `wait_for_lock_s`), EtlTransient/EtlFailed on failure."""
    if (run_id is None) == (request is None):
        raise ValueError("give exactly one of run_id and request")
    control = await connect(database_url, application_name="mysetlist-etl-control")
    try:
        deadline = time.monotonic() + wait_for_lock_s
        while not await try_lock(control):
            if run_id is not None:
                row = await _one(
                    control, "SELECT status FROM analytics.etl_runs WHERE id = %s", (run_id,)
                )
                if row is None or row["status"] not in ("queued", "failed"):
                    return None
            if time.monotonic() >= deadline:
                raise EtlBusy("another ETL run is in progress")
            await asyncio.sleep(0.5)
        try:
            await close_abandoned(control, exclude=run_id)
            row = await _claim(control, run_id, request)
            if row is None:
                return None
            run = _Run(control, row, config, database_url, progress)
            return await run.go()
        finally:
            await control.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    finally:
        await control.close()


async def _claim(
    control: Any, run_id: int | None, request: RunRequest | None
) -> dict[str, Any] | None:
    if run_id is not None:
        return await _one(
            control,
            """UPDATE analytics.etl_runs
                  SET status = 'running', started_at = now(), attempt = attempt + 1,
                      error = NULL, finished_at = NULL
                WHERE id = %s AND status IN ('queued', 'failed') AND cancel_requested_at IS NULL
            RETURNING *""",
            (run_id,),
        )
    assert request is not None
    steps = normalise_steps(request.steps, request.mode)
    try:
        return await _one(
            control,
            """INSERT INTO analytics.etl_runs
                 (trigger, mode, from_day, to_day, steps, status, started_at, attempt,
                  requested_by, requested_by_role)
               VALUES (%s, %s, %s, %s, %s, 'running', now(), 1, %s, %s)
               RETURNING *""",
            (
                request.trigger,
                request.mode,
                request.from_day,
                request.to_day,
                steps,
                request.requested_by,
                request.requested_by_role,
            ),
        )
    except psycopg.errors.UniqueViolation:
        raise EtlBusy("another ETL run is queued") from None


@dataclass
class _Timing:
    ms: float = 0.0
    rows: int = 0
    retries: int = 0  # day transactions rolled back in this step and run again

    def as_json(self) -> dict[str, float]:
        out: dict[str, float] = {"ms": round(self.ms, 1), "rows": self.rows}
        if self.retries:
            out["retries"] = self.retries
        return out


@dataclass
class _Run:
    control: Any
    row: dict[str, Any]
    config: EtlConfig
    database_url: str
    progress: Progress | None
    timings: dict[str, _Timing] = field(default_factory=dict)
    work: list[Any] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    days_done: int = 0
    rows_written: int = 0
    snapshot: datetime | None = None
    since: datetime | None = None  # incremental: events received after this
    voting_full: bool = False

    @property
    def run_id(self) -> int:
        return int(self.row["id"])

    @property
    def mode(self) -> str:
        return str(self.row["mode"])

    @property
    def steps(self) -> list[str]:
        return list(self.row["steps"])

    # -- bookkeeping ---------------------------------------------------------

    def _timing(self, step: str) -> _Timing:
        return self.timings.setdefault(step, _Timing())

    def _timings_json(self) -> str:
        return orjson.dumps({k: v.as_json() for k, v in self.timings.items()}).decode()

    async def _save_progress(self, current_step: str | None) -> None:
        await self.control.execute(
            """UPDATE analytics.etl_runs
                  SET current_step = %s, days_done = %s, rows_written = %s, step_timings = %s
                WHERE id = %s""",
            (current_step, self.days_done, self.rows_written, self._timings_json(), self.run_id),
        )

    async def _check_cancel(self) -> None:
        row = await _one(
            self.control,
            "SELECT cancel_requested_at IS NOT NULL AS c FROM analytics.etl_runs WHERE id = %s",
            (self.run_id,),
        )
        if row is None or row["c"]:
            raise EtlCancelled()

    def _tick(self, step: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(step, done, total)

    # -- the run -------------------------------------------------------------

    async def go(self) -> RunResult:
        started = time.monotonic()
        status, error = "succeeded", None
        checks_status, checks_failed = "not_run", 0
        maintenance_report: dict[str, Any] | None = None
        transient = False
        try:
            await self._resolve_range()
            await self._open_work_connections()
            steps = self.steps
            day_steps = [s for s in steps if s in DAY_STEPS]
            if day_steps and self.days:
                await self._day_stage(day_steps)
                await self._advance_watermark()
            later = [s for s in steps if s not in DAY_STEPS]
            if self.mode == "incremental" and not self.days:
                later = []  # nothing new arrived
            for wave in self._waves(later):
                await self._check_cancel()
                await self._save_progress("+".join(wave))
                outcomes = await self._run_wave(wave)
                if "quality_checks" in outcomes:
                    checks_failed = int(outcomes["quality_checks"])
                    checks_status = "failed" if checks_failed else "passed"
                if outcomes.get("maintenance") is not None:
                    maintenance_report = outcomes["maintenance"]
        except BaseException as exc:  # record every way out, then re-raise if needed
            error = _describe(exc)
            cancelled = isinstance(exc, EtlCancelled) or await self._cancel_requested()
            if cancelled:
                status, error = "cancelled", None
            else:
                status = "failed"
                transient = _is_transient(exc)
                log.error("ETL run %s failed: %s", self.run_id, error)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                await self._finish(status, error, started, checks_status, checks_failed, None)
                raise
        finally:
            await self._close_work_connections()
        await self._finish(status, error, started, checks_status, checks_failed, maintenance_report)
        result = RunResult(
            run_id=self.run_id,
            status=status,
            checks_status=checks_status,
            checks_failed=checks_failed,
            from_day=self.days[0] if self.days else self.row.get("from_day"),
            to_day=self.days[-1] if self.days else self.row.get("to_day"),
            days=len(self.days),
            duration_ms=(time.monotonic() - started) * 1000,
            step_timings={k: v.as_json() for k, v in self.timings.items()},
            error=error,
        )
        if status == "failed":
            raise (EtlTransient if transient else EtlFailed)(error or "ETL run failed")
        return result

    def _waves(self, steps: list[str]) -> list[list[str]]:
        """Group the steps after the day stage into waves whose steps run side by side on
        separate connections (each in its own transaction, each writing its own table);
        a step waits for the wave holding what it reads. Checks, ANALYZE and maintenance
        run alone, after everything else."""
        incremental = self.mode == "incremental"
        order = list(POST_ORDER_INCREMENTAL if incremental else POST_ORDER)
        deps = {
            "user_behavior_warehouse": {"voting_patterns_warehouse"},
            "refresh_views": {"trending"},
            # the latest-day WAU/MAU shortcut reads user_behavior_warehouse
            "platform_windows": {"user_behavior_warehouse"} if incremental else set(),
        }
        waves: list[list[str]] = []
        for step in sorted(steps, key=order.index):
            current = waves[-1] if waves else None
            if (
                current is not None
                and step not in BARRIER_STEPS
                and not (set(current) & BARRIER_STEPS)
                and not (deps.get(step, set()) & set(current))
            ):
                current.append(step)
            else:
                waves.append([step])
        return waves

    async def _run_wave(self, wave: list[str]) -> dict[str, Any]:
        outcomes: dict[str, Any] = {}
        if len(wave) == 1 or len(self.work) == 1:
            for step in wave:
                outcomes[step] = await self._run_step(step, self.work[0])
            return outcomes
        pending = list(wave)

        async def worker(conn: Any) -> None:
            while pending:
                step = pending.pop(0)
                outcomes[step] = await self._run_step(step, conn)

        try:
            async with asyncio.TaskGroup() as group:
                for conn in self.work[: len(wave)]:
                    group.create_task(worker(conn))
        except BaseExceptionGroup as eg:
            raise _first(eg) from None
        return outcomes

    async def _run_step(self, step: str, conn: Any) -> Any:
        self._tick(step, 0, 1)
        t0 = time.perf_counter()
        outcome: Any = None
        if step in ROLLUP_STEPS:
            await self._rollup(step, conn)
        elif step == "refresh_views":
            await self._refresh_views(conn)
        elif step == "quality_checks":
            outcome = await self._quality_checks()
        elif step == "analyze":
            await self._analyze()
        elif step == "maintenance":
            outcome = await maintenance.run(conn, self.config, today=await self._today())
        self._timing(step).ms += (time.perf_counter() - t0) * 1000
        self._tick(step, 1, 1)
        return outcome

    async def _cancel_requested(self) -> bool:
        try:
            await self._check_cancel()
        except EtlCancelled:
            return True
        except Exception:
            return False
        return False

    async def _finish(
        self,
        status: str,
        error: str | None,
        started: float,
        checks_status: str,
        checks_failed: int,
        maintenance_report: dict[str, Any] | None,
    ) -> None:
        try:
            await self.control.execute(
                """UPDATE analytics.etl_runs
                      SET status = %s, error = %s, finished_at = now(), duration_ms = %s,
                          current_step = NULL, days_done = %s, rows_written = %s,
                          step_timings = %s, checks_status = %s, checks_failed = %s,
                          maintenance = coalesce(%s::jsonb, maintenance)
                    WHERE id = %s""",
                (
                    status,
                    error,
                    (time.monotonic() - started) * 1000,
                    self.days_done,
                    self.rows_written,
                    self._timings_json(),
                    checks_status,
                    checks_failed,
                    orjson.dumps(maintenance_report).decode() if maintenance_report else None,
                    self.run_id,
                ),
            )
        except psycopg.Error:
            log.exception("could not record the outcome of ETL run %s", self.run_id)

    async def _today(self) -> date:
        row = await _one(self.control, "SELECT (now() AT TIME ZONE 'UTC')::date AS d")
        assert row is not None
        return row["d"]  # type: ignore[no-any-return]

    async def _resolve_range(self) -> None:
        row = await _one(
            self.control,
            """SELECT (now() AT TIME ZONE 'UTC')::date AS today, clock_timestamp() AS now,
                      w.last_full_day, w.last_received_at
                 FROM (SELECT 1) one
                 LEFT JOIN analytics.etl_watermarks w ON w.pipeline = %s""",
            (WATERMARK,),
        )
        assert row is not None
        today: date = row["today"]
        self.snapshot = row["now"]
        frm: date | None = self.row["from_day"]
        to: date | None = self.row["to_day"]
        if self.mode == "range":
            frm = frm or to
            to = to or today
            assert frm is not None
            self.voting_full = True
        elif self.mode == "daily":
            to = today - timedelta(days=1)
            if row["last_full_day"] is not None:
                frm = row["last_full_day"] + timedelta(days=1 - self.config.lookback_days)
            else:
                first = await _one(
                    self.control,
                    """SELECT (min(created_at) AT TIME ZONE 'UTC')::date AS d
                         FROM analytics.user_events WHERE created_at >= %s""",
                    (day_bounds(today - timedelta(days=self.config.initial_days))[0],),
                )
                frm = first["d"] if first and first["d"] else to
            self.voting_full = True
        else:  # incremental: the days of events received since the watermark
            window_start = day_bounds(today - timedelta(days=1))[0]
            snap = await _one(
                self.control,
                "SELECT max(received_at) AS m FROM analytics.user_events WHERE created_at >= %s",
                (window_start,),
            )
            newest = snap["m"] if snap else None
            last = row["last_received_at"]
            if newest is None or (last is not None and newest <= last):
                self.days = []
                await self._record_range(None, None)
                return
            self.snapshot = newest
            self.since = (last - INCREMENTAL_MARGIN) if last is not None else window_start
            found = await _all(
                self.control,
                """SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS d
                     FROM analytics.user_events
                    WHERE created_at >= %s AND received_at > %s AND received_at <= %s
                    ORDER BY 1""",
                (window_start, self.since, newest),
            )
            self.days = [r["d"] for r in found]
            await self._record_range(
                self.days[0] if self.days else None, self.days[-1] if self.days else None
            )
            return
        if frm > to:
            self.days = []
        else:
            self.days = [frm + timedelta(days=i) for i in range((to - frm).days + 1)]
        await self._record_range(frm, to)

    async def _record_range(self, frm: date | None, to: date | None) -> None:
        self.row["from_day"], self.row["to_day"] = frm, to
        await self.control.execute(
            """UPDATE analytics.etl_runs
                  SET from_day = %s, to_day = %s, days_total = %s, snapshot_received_at = %s
                WHERE id = %s""",
            (frm, to, len(self.days), self.snapshot, self.run_id),
        )

    async def _open_work_connections(self) -> None:
        n = max(1, min(self.config.parallelism, len(self.days) or 1))
        for _ in range(n):
            conn = await connect(
                self.database_url, application_name=f"mysetlist-etl run {self.run_id}"
            )
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, false),"
                " set_config('lock_timeout', %s, false),"
                " set_config('work_mem', %s, false),"
                " set_config('client_connection_check_interval', '1000', false),"
                " set_config('jit', 'off', false),"
                # The staging table is scanned by every day step: keep it in memory
                # (must be set before the session's first temp table).
                " set_config('temp_buffers', '256MB', false),"
                # A lost commit after a crash only means the day is reloaded: each day's
                # rows and its etl_loaded_days entry commit (or vanish) together.
                " set_config('synchronous_commit', 'off', false)",
                (
                    str(self.config.timeout_ms),
                    str(self.config.lock_timeout_ms),
                    self.config.work_mem,
                ),
            )
            # Incremental runs reload only these users' per-user rows (see extract.sql).
            await conn.execute("CREATE TEMP TABLE etl_day_scope (user_id uuid PRIMARY KEY)")
            self.work.append(conn)
        if self.mode == "incremental" and self.days:
            await self._fill_day_scope()
        pids = [conn.info.backend_pid for conn in self.work]
        await self.control.execute(
            "UPDATE analytics.etl_runs SET backend_pids = %s WHERE id = %s", (pids, self.run_id)
        )

    async def _fill_day_scope(self) -> None:
        """Users with events received since the watermark, or votes since then."""
        assert self.since is not None
        start, end = day_bounds(self.days[0])[0], day_bounds(self.days[-1])[1]
        query = """INSERT INTO etl_day_scope
                   SELECT user_id FROM analytics.user_events
                    WHERE created_at >= %(start)s AND created_at < %(end)s
                      AND received_at > %(since)s AND received_at <= %(snapshot)s
                      AND user_id IS NOT NULL
                   UNION
                   SELECT user_id FROM app.setlist_votes WHERE created_at > %(since)s"""
        params = {"start": start, "end": end, "since": self.since, "snapshot": self.snapshot}
        for conn in self.work:
            await conn.execute(query, params)
            await conn.execute("ANALYZE etl_day_scope")

    async def _close_work_connections(self) -> None:
        for conn in self.work:
            try:
                await conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                log.debug("closing an ETL connection failed", exc_info=True)
        self.work.clear()

    # -- extract / transform / load, one transaction per day ------------------

    async def _day_stage(self, day_steps: list[str]) -> None:
        queue: asyncio.Queue[date] = asyncio.Queue()
        # Newest first: recent days are usually the biggest, and starting with the big
        # ones keeps the parallel loads from ending on one long straggler.
        for day in reversed(self.days):
            queue.put_nowait(day)
        total = len(self.days)
        self._tick("load days", 0, total)

        async def worker(conn: Any) -> None:
            while True:
                try:
                    day = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._check_cancel()
                await self._load_day(conn, day, day_steps)
                self.days_done += 1
                self._tick("load days", self.days_done, total)
                await self._save_progress("load days")

        try:
            async with asyncio.TaskGroup() as group:
                for conn in self.work:
                    group.create_task(worker(conn))
        except BaseExceptionGroup as eg:
            raise _first(eg) from None

    async def _load_day(self, conn: Any, day: date, day_steps: list[str]) -> None:
        start, end = day_bounds(day)
        params = {
            "day": day, "day_start": start, "day_end": end,
            "snapshot": self.snapshot, "run_id": self.run_id,
            "scoped": self.mode == "incremental",
        }  # fmt: skip
        for attempt in range(self.config.max_retries + 1):
            local: dict[str, _Timing] = {}
            step = day_steps[0]
            try:
                async with conn.transaction():
                    if self.config.parallelism > 1:
                        # Days already run side by side: no parallel workers per query.
                        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                    for step in day_steps:
                        t0 = time.perf_counter()
                        rows = 0
                        for stmt in statements(step):
                            cur = await conn.execute(stmt, params)
                            if _writes_rows(stmt):
                                rows += max(cur.rowcount or 0, 0)
                        pause = self.config.sleep_for(step, day)
                        if pause:  # test hook (ETL_TEST_SLEEP), see config.py
                            await conn.execute("SELECT pg_sleep(%s)", (pause,))
                        timing = local.setdefault(step, _Timing())
                        timing.ms += (time.perf_counter() - t0) * 1000
                        timing.rows += rows
                break
            except (
                psycopg.errors.SerializationFailure,
                psycopg.errors.DeadlockDetected,
                psycopg.errors.LockNotAvailable,
            ) as exc:
                # The day's transaction rolled back whole: nothing of it is visible.
                if attempt >= self.config.max_retries:
                    raise
                self._timing(step).retries += 1
                log.warning(
                    "ETL run %s: %s of %s failed (%s), retry %d of %d",
                    self.run_id, step, day, type(exc).__name__, attempt + 1,
                    self.config.max_retries,
                )  # fmt: skip
                await asyncio.sleep(0.2 * 2**attempt)
        for step, timing in local.items():
            total = self._timing(step)
            total.ms += timing.ms
            total.rows += timing.rows
            if step != "extract":
                self.rows_written += timing.rows

    async def _advance_watermark(self) -> None:
        today = await self._today()
        if self.mode == "incremental":
            await self.control.execute(
                """INSERT INTO analytics.etl_watermarks
                     (pipeline, last_received_at, run_id, updated_at)
                   VALUES (%s, %s, %s, now())
                   ON CONFLICT (pipeline) DO UPDATE SET
                     last_received_at = greatest(etl_watermarks.last_received_at,
                                                 EXCLUDED.last_received_at),
                     run_id = EXCLUDED.run_id, updated_at = now()""",
                (WATERMARK, self.snapshot, self.run_id),
            )
            return
        closed = [d for d in self.days if d < today]
        if not closed:
            return
        await self.control.execute(
            """INSERT INTO analytics.etl_watermarks (pipeline, last_full_day, run_id, updated_at)
               VALUES (%s, %s, %s, now())
               ON CONFLICT (pipeline) DO UPDATE SET
                 last_full_day = greatest(etl_watermarks.last_full_day, EXCLUDED.last_full_day),
                 run_id = EXCLUDED.run_id, updated_at = now()""",
            (WATERMARK, max(closed), self.run_id),
        )

    # -- rollups ---------------------------------------------------------------

    def _range(self) -> tuple[date, date] | None:
        frm, to = self.row.get("from_day"), self.row.get("to_day")
        if frm is None or to is None:
            return None
        return frm, to

    async def _fill_scope(self, conn: Any) -> None:
        """etl_scope(kind, id, user_id): the users whose entity-level rows this run
        recomputes."""
        rng = self._range()
        await conn.execute(
            "CREATE TEMP TABLE etl_scope (kind text, id text, user_id uuid) ON COMMIT DROP"
        )
        if rng is None:
            return
        lo, hi = rng
        if self.mode == "incremental":
            # The users with new events or votes; show and artist accuracy is left to
            # the daily run (recomputing a popular show's votes every few minutes is not
            # worth it).
            await conn.execute(
                "INSERT INTO etl_scope SELECT 'user', user_id::text, user_id FROM etl_day_scope"
            )
        else:
            await conn.execute(
                """INSERT INTO etl_scope
                   SELECT DISTINCT 'user', user_id::text, user_id
                     FROM analytics.daily_user_stats
                    WHERE day BETWEEN %s AND %s""",
                (lo, hi),
            )
        await conn.execute("ANALYZE etl_scope")

    async def _max_day(self, conn: Any, table: str) -> date | None:
        row = await _one(conn, f"SELECT max(day) AS d FROM {table}")
        return row["d"] if row else None

    async def _rollup(self, step: str, conn: Any) -> None:
        rng = self._range()
        if rng is None:
            return
        lo, hi = rng
        timing = self._timing(step)
        async with conn.transaction():
            if step in ("platform_windows", "trending"):
                # Windows reach forward from the reloaded days up to the last loaded day.
                last = await self._max_day(conn, "analytics.daily_platform_metrics")
                if last is None or last < lo:
                    return
                span = 29 if step == "platform_windows" else 34
                params: dict[str, Any] = {"lo": lo, "hi": min(hi + timedelta(days=span), last)}
                if (
                    step == "platform_windows"
                    and self.mode == "incremental"
                    and lo == hi == last
                    and "user_behavior_warehouse" in self.steps
                ):
                    step, params = "platform_windows_latest", {"day": last}
            else:
                await self._fill_scope(conn)
                params = {"full": self.voting_full}
            for stmt in statements(step):
                cur = await conn.execute(stmt, params)
                if _writes_rows(stmt):
                    timing.rows += max(cur.rowcount or 0, 0)
                    self.rows_written += max(cur.rowcount or 0, 0)
            pause = self.config.sleep_for(step, None)
            if pause:
                await conn.execute("SELECT pg_sleep(%s)", (pause,))

    # -- post-processing -----------------------------------------------------

    async def _refresh_views(self, conn: Any) -> None:
        for view in MATERIALIZED_VIEWS:
            await conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
        row = await _one(
            conn,
            "SELECT (SELECT count(*) FROM analytics.cohort_retention_weekly)"
            " + (SELECT count(*) FROM analytics.genre_trends_daily) AS n",
        )
        self._timing("refresh_views").rows += int(row["n"]) if row else 0

    async def _quality_checks(self) -> int:
        rng = self._range()
        results = await quality.run_checks(
            self.work[0],
            lo=rng[0] if rng else None,
            hi=rng[1] if rng else None,
            snapshot=self.snapshot,
            voting_full="voting_patterns_warehouse" in self.steps and self.voting_full,
            incremental=self.mode == "incremental",
            other=self.work[1] if len(self.work) > 1 else None,
        )
        await quality.store(self.control, self.run_id, results)
        self._timing("quality_checks").rows += len(results)
        return sum(1 for r in results if not r.passed)

    async def _analyze(self) -> None:
        tables: list[str] = []
        for step in self.steps:
            for table in STEP_TABLES.get(step, []):
                if table not in tables:
                    tables.append(table)
        for table in tables:
            await self.work[0].execute(f"ANALYZE {table}")
        self._timing("analyze").rows += len(tables)


def _writes_rows(stmt: str) -> bool:
    """INSERT or UPDATE (possibly after a WITH); row counts of other statements are ignored."""
    code = " ".join(line for line in stmt.splitlines() if not line.strip().startswith("--")).upper()
    verb = code.split(None, 1)[0] if code.strip() else ""
    return verb in ("INSERT", "UPDATE") or (verb == "WITH" and " UPDATE " in code)


def _first(eg: BaseExceptionGroup[Any]) -> BaseException:
    """The most telling exception of a task group: a cancel beats the rest."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(eg)
    for e in leaves:
        if isinstance(e, EtlCancelled):
            return e
    for e in leaves:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return leaves[0]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        diag = exc.diag
        text = f"{type(exc).__name__}: {diag.message_primary or exc}"
        if diag.context:
            text += f" ({diag.context.splitlines()[0]})"
        return text
    return f"{type(exc).__name__}: {exc}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, EtlBusy):
        return True
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return False  # a timeout: retrying would time out again
    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.errors.SerializationFailure
        | psycopg.errors.DeadlockDetected,
    )
