"""The live metrics in Redis, as every capability sees them: the key names (tracking's
recorder writes them) and the one read (the public live endpoint and the dashboard's
real-time panel answer from it). Owned by core so a reader never imports the writer.

Keys, each under `MYSETLIST_REDIS_KEY_PREFIX` (default `mysetlist`, so `mysetlist:live:users`;
environments or test runs sharing one Redis keep apart by prefix). All times are ingest time,
UTC epoch seconds; minute buckets expire after 2 hours:
- `live:users`, `live:visitors`, `live:sessions`: sorted sets member → last seen; "active"
  means seen in the last 5 minutes (older members are trimmed on every write).
- `live:events:<minute>`: hash event_type → count (events per minute by type; votes per hour
  is the sum of `vote` over the last 60 minutes).
- `live:{shows}:<minute>`: sorted set show_id → views + votes (active shows: top of the union
  of the last 60 minutes). The hash tag `{shows}` puts every minute in one Redis Cluster
  slot, so the one ZUNION over them works on a cluster too.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from redis.exceptions import RedisError

from mysetlist.core.redis_client import RedisClient

DEFAULT_PREFIX = "mysetlist"
ACTIVE_WINDOW = 300  # seconds a member counts as active after it was last seen
BUCKET_TTL = 7200  # seconds a minute bucket lives
ACTIVE_SETS = ("users", "visitors", "sessions")


def minute_of(ts: float) -> int:
    """The minute bucket of an epoch timestamp."""
    return int(ts // 60)


def active_key(prefix: str, name: str) -> str:
    """The sorted set of `name` (one of ACTIVE_SETS): member → last seen."""
    return f"{prefix}:live:{name}"


def events_key(prefix: str, minute: int) -> str:
    """The hash event_type → count of one minute."""
    return f"{prefix}:live:events:{minute}"


def shows_key(prefix: str, minute: int) -> str:
    """The sorted set show_id → views + votes of one minute (hash-tagged: ZUNION reads the
    last hour's minutes in one command)."""
    return f"{prefix}:live:{{shows}}:{minute}"


async def read_live_metrics(
    redis: RedisClient,
    *,
    prefix: str = DEFAULT_PREFIX,
    now: float | None = None,
    top_shows: int = 10,
    minutes: int = 60,
) -> dict[str, Any]:
    """Active users/sessions (5 min), votes this hour, active shows, events per minute by
    type. `status` is `ok`, or `degraded` when Redis cannot be read."""
    now = time.time() if now is None else now
    minute = minute_of(now)
    since = now - ACTIVE_WINDOW
    buckets = list(range(minute - minutes + 1, minute + 1))
    try:
        pipe = redis.pipeline(transaction=False)
        for name in ACTIVE_SETS:
            pipe.zcount(active_key(prefix, name), since, "+inf")
        for b in buckets:
            pipe.hgetall(events_key(prefix, b))
        pipe.zunion([shows_key(prefix, b) for b in buckets], withscores=True, aggregate="SUM")
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
