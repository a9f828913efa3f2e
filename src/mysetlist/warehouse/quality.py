"""Data-quality checks run after each ETL run and stored with it (`analytics.etl_quality_checks`).

- schema: every warehouse table has the expected columns and types, and values are in range
  (scores in [0, 1] and equal to the sum of their parts, counts non-negative, WAU ≤ MAU …);
- completeness: every day in the run's range has a `daily_platform_metrics` row, and per
  day the warehouse's event counts reconcile with `analytics.user_events` (as of the run's
  snapshot: events received later belong to the next run);
- consistency: votes in the warehouse equal votes in `app.setlist_votes`, per day range
  and (after a full voting rollup) in total;
- freshness: each of the last 7 closed days that has events is loaded, and was loaded after
  the day had ended (not only as a partial day by the incremental run).

A failed check marks the run (`checks_status = 'failed'`, `checks_failed`); it never
silently passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson
import psycopg

from mysetlist.core.db import fetch_all_in
from mysetlist.core.watermarks import read_watermark
from mysetlist.warehouse.ranges import WATERMARK
from mysetlist.warehouse.sql_files import query

Connection = psycopg.AsyncConnection[Any]

EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "daily_user_stats": {
        "day": "date", "user_id": "uuid", "events": "integer", "page_views": "integer",
        "unique_pages": "integer", "event_types": "integer", "sessions": "integer",
        "session_seconds": "bigint", "searches": "integer", "votes": "integer",
        "follows": "integer",
    },
    "user_engagement_warehouse": {
        "day": "date", "user_id": "uuid", "sessions": "integer", "page_views": "integer",
        "unique_pages": "integer", "event_types": "integer", "engagement_score": "numeric",
    },
    "user_behavior_warehouse": {
        "user_id": "uuid", "active_days": "integer", "engagement_score": "numeric",
        "voting_accuracy": "numeric",
    },
    "voting_patterns_warehouse": {
        "grain": "text", "scope_id": "text", "user_id": "uuid", "show_id": "bigint",
        "artist_id": "bigint", "votes": "bigint", "correct_votes": "bigint",
        "accuracy": "numeric",
    },
    "artist_popularity_warehouse": {
        "artist_id": "bigint", "day": "date", "activity": "integer",
        "trending_score": "numeric",
    },
    "show_engagement_warehouse": {
        "show_id": "bigint", "day": "date", "views": "integer", "votes": "integer",
    },
    "daily_platform_metrics": {
        "day": "date", "events_total": "bigint", "active_users": "integer", "wau": "integer",
        "mau": "integer", "stickiness": "numeric",
    },
}  # fmt: skip


CheckCategory = Literal["schema", "completeness", "consistency", "freshness"]


@dataclass
class CheckResult:
    name: str
    category: CheckCategory
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)


async def check_schema(
    conn: Connection, day_range: tuple[date, date] | None = None
) -> list[CheckResult]:
    """Columns and types; value rules over the whole tables, or only the days of
    `day_range` for day-grained tables (incremental runs)."""
    actual: dict[str, dict[str, str]] = {}
    for row in await fetch_all_in(
        conn,
        query("check_schema_columns"),
        {"tables": list(EXPECTED_COLUMNS)},
    ):
        actual.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    problems = []
    for table, columns in EXPECTED_COLUMNS.items():
        if table not in actual:
            problems.append(f"{table}: missing table")
            continue
        for column, typ in columns.items():
            got = actual[table].get(column)
            if got is None:
                problems.append(f"{table}.{column}: missing")
            elif got != typ:
                problems.append(f"{table}.{column}: {got}, expected {typ}")
    results = [CheckResult("schema_columns", "schema", not problems, {"problems": problems})]
    # The value rules (check_values.sql: a condition per table that no row may meet).
    lo, hi = day_range if day_range is not None else (None, None)
    (counts,) = await fetch_all_in(conn, query("check_values"), {"lo": lo, "hi": hi})
    bad = {table: int(n) for table, n in counts.items() if n}
    results.append(CheckResult("schema_values", "schema", not bad, {"rows_out_of_range": bad}))
    return results


async def check_completeness(
    conn: Connection, lo: date, hi: date, snapshot: datetime | None
) -> list[CheckResult]:
    missing = await fetch_all_in(
        conn,
        query("check_days_present"),
        {"lo": lo, "hi": hi},
    )
    days_ok = not missing
    mismatches = await fetch_all_in(
        conn,
        query("check_events_reconcile"),
        {"lo": lo, "hi": hi, "snapshot": snapshot},
    )
    return [
        CheckResult(
            "days_present", "completeness", days_ok,
            {"from": lo.isoformat(), "to": hi.isoformat(),
             "missing_days": [r["day"].isoformat() for r in missing]},
        ),
        CheckResult(
            "events_reconcile", "completeness", not mismatches,
            {"mismatched_days": [_jsonable(r) for r in mismatches[:20]],
             "mismatched_count": len(mismatches)},
        ),
    ]  # fmt: skip


async def check_consistency(
    conn: Connection, lo: date, hi: date, voting_full: bool
) -> list[CheckResult]:
    rows = await fetch_all_in(
        conn,
        query("check_votes_by_day"),
        {"lo": lo, "hi": hi},
    )
    r = rows[0]
    ok = r["app_votes"] == r["user_day_votes"] == r["platform_votes"]
    results = [CheckResult("votes_by_day", "consistency", ok, _jsonable(r))]
    if voting_full:
        rows = await fetch_all_in(
            conn,
            query("check_votes_total"),
        )
        r = rows[0]
        ok = r["app_votes"] == r["by_user"] == r["by_show"] == r["by_artist"]
        results.append(CheckResult("votes_total", "consistency", ok, _jsonable(r)))
    return results


async def check_freshness(conn: Connection) -> CheckResult:
    (now_row,) = await fetch_all_in(conn, query("run_today"))
    today: date = now_row["today"]
    loaded = {
        r["day"]: r
        for r in await fetch_all_in(
            conn, query("check_loaded_days"), {"since": today - timedelta(days=7)}
        )
    }
    rows: list[dict[str, Any]] = []
    for back in range(7, 0, -1):
        day = today - timedelta(days=back)
        got = loaded.get(day)
        if got is not None and not got["partial"]:
            continue
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        (has_events,) = await fetch_all_in(
            conn, query("events_exist"), {"start": start, "end": start + timedelta(days=1)}
        )
        if has_events["found"]:
            rows.append({"day": day, "loaded_at": got["loaded_at"] if got else None})
    wm = await read_watermark(conn, WATERMARK)
    return CheckResult(
        "recent_days_loaded",
        "freshness",
        not rows,
        {
            "stale_days": [
                {"day": r["day"].isoformat(), "loaded": r["loaded_at"] is not None} for r in rows
            ],
            "watermark": _jsonable(asdict(wm)) if wm else None,
        },
    )


async def run_checks(
    conn: Connection,
    *,
    lo: date | None,
    hi: date | None,
    snapshot: datetime | None,
    voting_full: bool,
    incremental: bool = False,
    other: Connection | None = None,
) -> list[CheckResult]:
    """All checks for a run over lo..hi (range checks are skipped when there is no range)."""
    in_range = (lo, hi) if incremental and lo is not None and hi is not None else None

    async def completeness() -> list[CheckResult]:
        if lo is None or hi is None:
            return []
        # The event reconciliation scans the range's events: on its own connection when
        # one is given, alongside the other checks.
        return await check_completeness(other or conn, lo, hi, snapshot)

    async def the_rest() -> list[CheckResult]:
        results = await check_schema(conn, in_range)
        if lo is not None and hi is not None:
            results += await check_consistency(conn, lo, hi, voting_full)
        results.append(await check_freshness(conn))
        return results

    if other is None:
        rest = await the_rest()
        complete = await completeness()
    else:
        rest, complete = await asyncio.gather(the_rest(), completeness())
    return rest[:2] + complete + rest[2:]


CHECK_CHUNK_DAYS = 31  # days reconciled per query by check_range (progress granularity)


async def check_range(
    conn: Connection, lo: date, hi: date, *, progress: Callable[[int, int], None] | None = None
) -> list[CheckResult]:
    """Every check over the whole warehouse for days lo..hi, whatever runs loaded them
    (`mysetlist etl check`): a run only checks its own range, so a warehouse left stale
    by replaced source data passes every run's checks. `progress(done, total)` is called
    per chunk of days reconciled."""
    chunks = [
        (start, min(start + timedelta(days=CHECK_CHUNK_DAYS - 1), hi))
        for start in (
            lo + timedelta(days=i) for i in range(0, (hi - lo).days + 1, CHECK_CHUNK_DAYS)
        )
    ]
    total = len(chunks) + 1
    missing: list[str] = []
    mismatched: list[dict[str, Any]] = []
    mismatched_count = 0
    for done, (start, end) in enumerate(chunks, 1):
        days_present, reconcile = await check_completeness(conn, start, end, None)
        missing += days_present.details["missing_days"]
        mismatched += reconcile.details["mismatched_days"]
        mismatched_count += reconcile.details["mismatched_count"]
        if progress is not None:
            progress(done, total)
    results = await check_schema(conn)
    results += [
        CheckResult(
            "days_present", "completeness", not missing,
            {"from": lo.isoformat(), "to": hi.isoformat(), "missing_days": missing},
        ),
        CheckResult(
            "events_reconcile", "completeness", not mismatched_count,
            {"mismatched_days": mismatched[:20], "mismatched_count": mismatched_count},
        ),
    ]  # fmt: skip
    results += await check_consistency(conn, lo, hi, voting_full=True)
    results.append(await check_freshness(conn))
    if progress is not None:
        progress(total, total)
    return results


async def store(conn: Connection, run_id: int, results: list[CheckResult]) -> None:
    await conn.execute(query("check_clear"), {"run_id": run_id})
    for r in results:
        await conn.execute(
            query("check_store"),
            {**asdict(r), "run_id": run_id, "details": orjson.dumps(r.details).decode()},
        )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, date | datetime):
            out[key] = value.isoformat()
        elif isinstance(value, timedelta):
            out[key] = value.total_seconds()
        elif hasattr(value, "__int__") and not isinstance(value, bool | int | float):
            out[key] = int(value)
        else:
            out[key] = value
    return out
