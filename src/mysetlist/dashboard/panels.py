"""The dashboard's panels: what each shows, the query behind it (one .sql file per panel in
`dashboard/sql/`, reading the warehouse, the rollups, the run tables and the audit trail,
never raw events over the range), and the document that gathers them, cached in Redis for
a short while.

Each panel answers `{"title", "section", "unit", "data"}`, plus `"empty"` (what to do to
fill it) when it has nothing yet, or `"error"` when its query failed: one broken panel
never takes the page down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import psycopg
from prometheus_client import REGISTRY
from redis.exceptions import RedisError

from mysetlist.core.db import Database, fetch_one_in, read_sql
from mysetlist.core.live_metrics import read_live_metrics
from mysetlist.core.redis_client import RedisClient
from mysetlist.core.time_zones import is_time_zone
from mysetlist.dashboard.errors import InvalidWindow, UnknownPanel

log = logging.getLogger(__name__)

_SQL = "mysetlist.dashboard.sql"  # one file per panel
_PACKAGE = "mysetlist.dashboard"
DashboardRange = Literal["24h", "7d", "30d", "90d"]
RANGES: dict[DashboardRange, timedelta] = {
    "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}  # fmt: skip
PanelSection = Literal["realtime", "users", "content", "notifications", "system"]
# The page's sections, in order, with their headings.
SECTIONS: dict[PanelSection, str] = {
    "realtime": "Real time", "users": "User analytics", "content": "Content insights",
    "notifications": "Notifications", "system": "System health",
}  # fmt: skip


@dataclass(frozen=True)
class Panel:
    name: str
    section: PanelSection
    title: str
    unit: str
    empty_hint: str
    # The field of `data` that is empty when the panel has nothing (None: `data` itself).
    primary: str | None = None
    live: bool = False


_ETL_HINT = "no warehouse data in this range yet: run `mysetlist etl run` (or press Run ETL)"
PANELS: tuple[Panel, ...] = (
    Panel("realtime_hourly", "realtime", "Events and users per hour, last 24 h", "per hour",
          "no events in the last 24 hours: send some to POST /api/analytics/events "
          "(the hourly rollup runs every minute with `mysetlist worker`)", live=True),
    Panel("engagement_distribution", "users", "Engagement score distribution", "users",
          _ETL_HINT, primary="users"),
    Panel("activity_heatmap", "users", "Activity by weekday and hour", "events",
          "no hourly rollup in this range: events appear here an hour after ingest "
          "(`mysetlist worker` runs the rollup)", primary="cells"),
    Panel("cohort_retention", "users", "Weekly cohort retention", "% of cohort active",
          _ETL_HINT),
    Panel("active_users", "users", "DAU / WAU / MAU and stickiness", "users", _ETL_HINT),
    Panel("top_users", "users", "Top users by engagement", "score 0-1", _ETL_HINT),
    Panel("churn_risk", "users", "Churn risk", "users",
          "no churn predictions yet: run `mysetlist ml train-churn` after an ETL run",
          primary="users"),
    Panel("trending_artists", "content", "Trending artists", "growth vs 28-day baseline",
          _ETL_HINT, primary="artists"),
    Panel("top_shows", "content", "Shows with the highest engagement",
          "views + 2 x votes + 3 x shares", _ETL_HINT),
    Panel("genre_trends", "content", "Genre trends", "activity per day", _ETL_HINT,
          primary="genres"),
    Panel("voting", "content", "Voting patterns and prediction accuracy",
          "votes per day; F1 0-1", _ETL_HINT, primary="per_day"),
    Panel("notifications", "notifications", "Notifications", "messages",
          "no notification sent in this range: send one with POST /api/notifications/send",
          primary="by_channel", live=True),
    Panel("outbox", "notifications", "Local outbox", "messages (.eml files)",
          "no message in the local outbox in this range: with EMAIL_PROVIDERS=outbox (what "
          "`mysetlist demo` uses when no mail provider is configured) each email is written "
          "as a file under EMAIL_OUTBOX_DIR", primary="messages", live=True),
    Panel("etl_runs", "system", "ETL runs", "ms",
          "no ETL run yet: run `mysetlist etl run` or press Run ETL", live=True),
    Panel("job_queue", "system", "Job queue and background runs", "jobs",
          "no background run in this range: start `mysetlist worker`", primary="tasks",
          live=True),
    Panel("database", "system", "Database size and largest tables", "bytes",
          "no table yet: run `mysetlist migrate`", primary="largest"),
    Panel("models", "system", "Model versions", "offline metric",
          "no model trained yet: run `mysetlist ml train-churn` / the nightly training"),
    Panel("security", "system", "Security", "events (audit trail)",
          "no security event in this range. This panel watches the audit trail for failed "
          "authentications (401), refusals (403), rate-limit hits (429) and webhook signature "
          "failures by source, alerts (MYSETLIST_SECURITY_ALERT_PER_MINUTE from one client), "
          "and GDPR exports and erasures", primary="entries"),
)  # fmt: skip
BY_NAME = {p.name: p for p in PANELS}
LIVE_PANELS = ("realtime", *(p.name for p in PANELS if p.live))
REALTIME_HINT = "no live activity in the last 5 minutes: send events to POST /api/analytics/events"


@dataclass(frozen=True)
class Window:
    """The range a dashboard shows, resolved against one `now`."""

    range: DashboardRange
    tz: str
    now: datetime

    @property
    def params(self) -> dict[str, Any]:
        since = self.now - RANGES[self.range]
        return {"since": since, "since_day": since.date(), "until_day": self.now.date(),
                "tz": self.tz}  # fmt: skip


def window(range_: str, tz: str, now: datetime | None = None) -> Window:
    known = next((r for r in RANGES if r == range_), None)
    if known is None:
        raise InvalidWindow(f"range must be one of {', '.join(RANGES)}", field="range")
    if not is_time_zone(tz):
        raise InvalidWindow(
            f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)", field="tz"
        )
    return Window(known, tz, now or datetime.now(UTC))


def _is_empty(panel: Panel, data: Any) -> bool:
    value = data.get(panel.primary) if panel.primary and isinstance(data, dict) else data
    return not value


def _shape(panel: Panel, data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"title": panel.title, "section": panel.section, "unit": panel.unit,
                           "data": data}  # fmt: skip
    if _is_empty(panel, data):
        out["empty"] = panel.empty_hint
    return out


async def query_panel(db: Database, panel: Panel, win: Window, timeout_ms: int) -> dict[str, Any]:
    try:
        async with db.transaction() as conn:
            await conn.execute(
                read_sql(_PACKAGE, "panel_timeout.sql"), {"timeout_ms": str(int(timeout_ms))}
            )
            row = await fetch_one_in(conn, read_sql(_SQL, f"{panel.name}.sql"), win.params)
    except psycopg.Error as exc:
        log.warning("dashboard panel %s failed: %s", panel.name, exc)
        return {"title": panel.title, "section": panel.section, "unit": panel.unit,
                "data": None, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}  # fmt: skip
    return _shape(panel, row["data"] if row else None)


def _http_quantiles() -> dict[str, Any]:
    """API latency p50/p99 and the 5xx rate from this process's Prometheus metrics (since
    it started; with several API workers, of the worker answering)."""
    buckets: dict[float, float] = {}
    total = errors = 0.0
    newest_event: float | None = None
    for family in REGISTRY.collect():
        if family.name == "mysetlist_http_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
        elif family.name == "mysetlist_http_responses":
            for s in family.samples:
                if s.name.endswith("_total"):
                    total += s.value
                    if s.labels.get("status", "").startswith("5"):
                        errors += s.value
        elif family.name == "mysetlist_ingest_newest_committed_timestamp_seconds":
            for s in family.samples:
                newest_event = s.value or None

    def quantile(q: float) -> float | None:
        bounds = sorted(buckets)
        if not bounds or buckets[bounds[-1]] == 0:
            return None
        target = q * buckets[bounds[-1]]
        for le in bounds:
            if buckets[le] >= target:
                return None if le == float("inf") else le * 1000
        return None

    return {
        "api_p50_ms": quantile(0.5),
        "api_p99_ms": quantile(0.99),
        "api_requests": int(total),
        "api_error_rate": round(errors / total, 4) if total else None,
        "ingest_lag_seconds": round(max(0.0, time.time() - newest_event), 1)
        if newest_event
        else None,
    }


async def realtime_panel(redis: RedisClient, prefix: str) -> dict[str, Any]:
    live = await read_live_metrics(redis, prefix=prefix)
    data = {**live, **_http_quantiles()}
    out: dict[str, Any] = {"title": "Right now", "section": "realtime",
                           "unit": "users, events, ms", "data": data}  # fmt: skip
    if live.get("status") != "ok":
        out["error"] = live.get("detail", "live metrics unavailable")
    elif not live.get("events_last_hour"):
        out["empty"] = REALTIME_HINT
    return out


async def one_panel(
    db: Database, redis: RedisClient, prefix: str, name: str, win: Window, timeout_ms: int
) -> dict[str, Any]:
    if name == "realtime":
        return await realtime_panel(redis, prefix)
    panel = BY_NAME.get(name)
    if panel is None:
        raise UnknownPanel(f"no panel {name!r}; panels: realtime, {', '.join(BY_NAME)}")
    return await query_panel(db, panel, win, timeout_ms)


def _cache_key(prefix: str, win: Window) -> str:
    return f"{prefix}:dashboard:v1:{win.range}:{win.tz}"


async def dashboard_document(
    db: Database,
    redis: RedisClient,
    prefix: str,
    win: Window,
    *,
    timeout_ms: int,
    cache_seconds: float,
) -> bytes:
    """Every panel as one JSON document (bytes, as cached), from Redis when fresh."""
    key = _cache_key(prefix, win)
    try:
        cached = await redis.get(key)
    except (RedisError, OSError):
        cached = None  # the database still answers; only the cache is lost
    if cached is not None:
        return cached if isinstance(cached, bytes) else cached.encode()
    started = time.perf_counter()
    names = [p.name for p in PANELS]
    results = await asyncio.gather(
        realtime_panel(redis, prefix),
        *(query_panel(db, BY_NAME[n], win, timeout_ms) for n in names),
    )
    panels = {"realtime": results[0], **dict(zip(names, results[1:], strict=True))}
    body = orjson.dumps({
        "range": win.range, "timezone": win.tz, "generated_at": win.now,
        "since": win.params["since"], "cache_seconds": cache_seconds,
        "query_ms": round((time.perf_counter() - started) * 1000, 1), "panels": panels,
    })  # fmt: skip
    with contextlib.suppress(RedisError, OSError):
        await redis.set(key, body, px=int(cache_seconds * 1000))
    return body
