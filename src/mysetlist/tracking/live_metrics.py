"""Live metrics in Redis: who is active now, what is happening this hour.

Written after commit, never on the ack path: the group-commit writer hands each committed
flush to `LiveMetricsRecorder.record` (a cheap in-memory aggregation); a background task
pushes the aggregate to Redis in one pipeline every `interval` seconds (1 s: a member seen
many times in a second costs one ZADD argument, not one per event). If Redis is down the
aggregate is dropped (best effort), ingest carries on, and `read_live_metrics` answers
`status: degraded`.

Key names and the read (`read_live_metrics`, re-exported here for tracking's own callers)
live in `core.live_metrics`: readers outside tracking go there, never here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections import Counter

import orjson
from redis.exceptions import RedisError

from mysetlist.core.live_metrics import (
    ACTIVE_SETS,
    ACTIVE_WINDOW,
    BUCKET_TTL,
    DEFAULT_PREFIX,
    active_key,
    events_key,
    minute_of,
    shows_key,
)
from mysetlist.core.live_metrics import read_live_metrics as read_live_metrics
from mysetlist.core.redis_client import RedisClient
from mysetlist.tracking import monitoring
from mysetlist.tracking.events import EventRow

log = logging.getLogger(__name__)

SHOW_EVENT_TYPES = frozenset({"show_view", "vote"})


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
        # A pass per field, in C (map, set and Counter updates) where it can be: a Python
        # loop over every row was 4 % of an ingest worker. A user's str() is taken once per
        # flush, not once per event.
        self.types.update(map(_event_type, rows))
        self.sessions.update(map(_session_id, rows))
        self.sessions.discard(None)  # type: ignore[arg-type]
        self.users.update(map(str, {r.user_id for r in rows if r.user_id is not None}))
        self.visitors.update(
            [r.anonymous_id for r in rows if r.user_id is None and r.anonymous_id is not None]
        )
        for row in rows:
            if row.event_type in SHOW_EVENT_TYPES and '"show_id"' in row.properties:
                show = orjson.loads(row.properties).get("show_id")
                if show is not None:
                    self.shows[str(show)] += 1


_event_type = operator.attrgetter("event_type")
_session_id = operator.attrgetter("session_id")


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
    redis: RedisClient,
    agg: _Aggregate,
    now: float,
    recent: dict[str, _RecentlySent] | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    minute = minute_of(now)
    pipe = redis.pipeline(transaction=False)
    for name, members in zip(ACTIVE_SETS, (agg.users, agg.visitors, agg.sessions), strict=True):
        key = active_key(prefix, name)
        todo = recent[name].fresh(members, now) if recent is not None else list(members)
        if todo:
            pipe.zadd(key, dict.fromkeys(todo, now))
        pipe.zremrangebyscore(key, "-inf", now - ACTIVE_WINDOW)
        pipe.expire(key, ACTIVE_WINDOW * 2)  # a quiet deployment leaves nothing behind
    events = events_key(prefix, minute)
    for event_type, n in agg.types.items():
        pipe.hincrby(events, event_type, n)
    pipe.expire(events, BUCKET_TTL)
    if agg.shows:
        shows = shows_key(prefix, minute)
        for show, n in agg.shows.items():
            pipe.zincrby(shows, n, show)
        pipe.expire(shows, BUCKET_TTL)
    await pipe.execute()


class LiveMetricsRecorder:
    """Aggregates committed events in memory and pushes them to Redis periodically."""

    def __init__(
        self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX, interval: float = 1.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.interval = interval
        self._agg = _Aggregate()
        self._task: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._recent = {k: _RecentlySent() for k in ACTIVE_SETS}

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
