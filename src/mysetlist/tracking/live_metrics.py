"""Live metrics in Redis: who is active now, what is happening this hour.

Written after commit, never on the ack path: the group-commit writer hands each committed
flush to `LiveMetricsRecorder.record` (a cheap in-memory aggregation); a background task
pushes the aggregate to Redis in one pipeline every `interval` seconds (1 s: a member seen
many times in a second costs one ZADD argument, not one per event). If Redis is down the
aggregate is dropped (best effort), ingest carries on, and `read_live_metrics` answers
`status: degraded`.

Keys, each under `MYSETLIST_REDIS_KEY_PREFIX` (default `mysetlist`, so `mysetlist:live:users`;
environments or test runs sharing one Redis keep apart by prefix). All times are ingest time,
UTC epoch seconds; minute buckets expire after 2 hours:
- `live:users`, `live:visitors`, `live:sessions`: sorted sets member → last seen; "active"
  means seen in the last 5 minutes (older members are trimmed on every write).
- `live:events:<minute>`: hash event_type → count (events per minute by type; votes per hour
  is the sum of `vote` over the last 60 minutes).
- `live:shows:<minute>`: sorted set show_id → views + votes (active shows: top of the union of
  the last 60 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mysetlist.tracking import monitoring
from mysetlist.tracking.events import EventRow

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "mysetlist"
ACTIVE_WINDOW = 300
BUCKET_TTL = 7200
SHOW_EVENT_TYPES = frozenset({"show_view", "vote"})


def _minute(ts: float) -> int:
    return int(ts // 60)


class _Aggregate:
    def __init__(self) -> None:
        self.users: set[str] = set()
        self.visitors: set[str] = set()
        self.sessions: set[str] = set()
        self.types: Counter[str] = Counter()
        self.shows: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.types)

    def add(self, rows: list[EventRow]) -> None:
        for row in rows:
            self.types[row.event_type] += 1
            if row.user_id is not None:
                self.users.add(str(row.user_id))
            elif row.anonymous_id is not None:
                self.visitors.add(row.anonymous_id)
            if row.session_id is not None:
                self.sessions.add(row.session_id)
            if row.event_type in SHOW_EVENT_TYPES and '"show_id"' in row.properties:
                show = orjson.loads(row.properties).get("show_id")
                if show is not None:
                    self.shows[str(show)] += 1


class _RecentlySent:
    """Members whose "last seen" this process wrote less than `refresh` seconds ago: not
    re-sent (a 5-minute activity window does not need per-second precision, and re-packing
    thousands of ZADD arguments every second was the recorder's main cost under load)."""

    def __init__(self, refresh: float = 30.0) -> None:
        self.refresh = refresh
        self.sent: dict[str, float] = {}
        self.pruned_at = 0.0

    def fresh(self, members: set[str], now: float) -> list[str]:
        horizon = now - self.refresh
        sent = self.sent
        out = [m for m in members if sent.get(m, 0.0) < horizon]
        for m in out:
            sent[m] = now
        if now - self.pruned_at > self.refresh:
            self.sent = {m: t for m, t in sent.items() if t >= horizon}
            self.pruned_at = now
        return out


async def write_aggregate(
    redis: aioredis.Redis,
    agg: _Aggregate,
    now: float,
    recent: dict[str, _RecentlySent] | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    minute = _minute(now)
    pipe = redis.pipeline(transaction=False)
    for name, members in (
        ("users", agg.users),
        ("visitors", agg.visitors),
        ("sessions", agg.sessions),
    ):
        key = f"{prefix}:live:{name}"
        todo = recent[name].fresh(members, now) if recent is not None else list(members)
        if todo:
            pipe.zadd(key, dict.fromkeys(todo, now))
        pipe.zremrangebyscore(key, "-inf", now - ACTIVE_WINDOW)
        pipe.expire(key, ACTIVE_WINDOW * 2)  # a quiet deployment leaves nothing behind
    events_key = f"{prefix}:live:events:{minute}"
    for event_type, n in agg.types.items():
        pipe.hincrby(events_key, event_type, n)
    pipe.expire(events_key, BUCKET_TTL)
    if agg.shows:
        shows_key = f"{prefix}:live:shows:{minute}"
        for show, n in agg.shows.items():
            pipe.zincrby(shows_key, n, show)
        pipe.expire(shows_key, BUCKET_TTL)
    await pipe.execute()


class LiveMetricsRecorder:
    """Aggregates committed events in memory and pushes them to Redis periodically."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX, interval: float = 1.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.interval = interval
        self._agg = _Aggregate()
        self._task: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._recent = {k: _RecentlySent() for k in ("users", "visitors", "sessions")}

    def record(self, rows: list[EventRow]) -> None:
        self._agg.add(rows)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        if not self._agg:
            return
        agg, self._agg = self._agg, _Aggregate()
        now = time.time()
        if now < self._down_until:
            monitoring.LIVE_METRICS_UPDATES.labels("skipped").inc()
            return
        try:
            await write_aggregate(self.redis, agg, now, self._recent, prefix=self.prefix)
            monitoring.LIVE_METRICS_UPDATES.labels("ok").inc()
        except (RedisError, OSError) as exc:
            # Best effort: drop this aggregate, back off, keep ingesting.
            self._down_until = now + 5.0
            for recent in self._recent.values():  # what we think Redis has is now unknown
                recent.sent.clear()
            monitoring.LIVE_METRICS_UPDATES.labels("failed").inc()
            log.warning("live metrics update failed, Redis unavailable: %s", exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("live metrics flush crashed")


async def read_live_metrics(
    redis: aioredis.Redis,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: float | None = None,
    top_shows: int = 10,
    minutes: int = 60,
) -> dict[str, Any]:
    """The live panel: active users/sessions (5 min), votes this hour, active shows, events
    per minute by type. `status` is `ok`, or `degraded` when Redis cannot be read."""
    now = time.time() if now is None else now
    minute = _minute(now)
    since = now - ACTIVE_WINDOW
    buckets = list(range(minute - minutes + 1, minute + 1))
    try:
        pipe = redis.pipeline(transaction=False)
        for name in ("users", "visitors", "sessions"):
            pipe.zcount(f"{prefix}:live:{name}", since, "+inf")
        for b in buckets:
            pipe.hgetall(f"{prefix}:live:events:{b}")
        shows_keys = [f"{prefix}:live:shows:{b}" for b in buckets]
        pipe.zunion(shows_keys, withscores=True, aggregate="SUM")
        results = await pipe.execute()
    except (RedisError, OSError) as exc:
        return {
            "status": "degraded",
            "detail": f"live metrics unavailable: {type(exc).__name__}",
            "generated_at": now,
        }
    users, visitors, sessions = (int(x) for x in results[:3])
    per_minute: list[dict[str, Any]] = []
    votes = 0
    totals: Counter[str] = Counter()
    for b, raw in zip(buckets, results[3 : 3 + len(buckets)], strict=True):
        counts = {k.decode(): int(v) for k, v in raw.items()}
        votes += counts.get("vote", 0)
        totals.update(counts)
        if counts:
            per_minute.append({"minute": b * 60, "events": counts})
    shows = sorted(results[-1], key=lambda kv: (-kv[1], kv[0]))[:top_shows]
    return {
        "status": "ok",
        "generated_at": now,
        "active_window_seconds": ACTIVE_WINDOW,
        "concurrent_users": users,
        "concurrent_visitors": visitors,
        "active_sessions": sessions,
        "votes_last_hour": votes,
        "events_last_hour": dict(totals),
        "events_per_minute": per_minute,
        "active_shows": [{"show_id": s.decode(), "score": int(score)} for s, score in shows],
    }
