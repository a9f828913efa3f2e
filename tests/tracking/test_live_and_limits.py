"""Live metrics in Redis, degraded mode without Redis, rate limits, /metrics."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mysetlist.core.config import Settings
from mysetlist.core.redis_client import make_redis
from mysetlist.core.runtime import Runtime
from mysetlist.tracking.events import EventRow
from mysetlist.tracking.live_metrics import LiveMetricsRecorder, read_live_metrics
from tests.conditions import until
from tests.conftest import free_port, serve_app
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

EVENTS = "/api/analytics/events"
FAILED_OPEN = "mysetlist_rate_limiter_failed_open_total"


def _metric(text: str, name: str) -> float:
    """One unlabelled sample from a Prometheus text page."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    raise AssertionError(f"{name} not in /metrics")


async def test_live_metrics_after_known_events(
    settings: Settings,
    database_url: str,
    redis_url: str,
    token_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mysetlist.api import create_app

    # An API with live metrics of its own (a fresh key prefix): every count is this test's.
    own = settings.model_copy(update={"redis_key_prefix": f"live-test-{uuid.uuid4().hex[:8]}"})
    show = f"show-{uuid.uuid4().hex[:8]}"
    users = [str(uuid.uuid4()) for _ in range(3)]
    expected = {
        "status": "ok",
        "concurrent_users": 3,
        "concurrent_visitors": 4,
        "active_sessions": 3,
        "votes_last_hour": 6,
        "events_last_hour": {"vote": 6, "show_view": 3, "search": 4},
        "active_shows": [{"show_id": show, "score": 9}],
    }

    def observed(body: dict[str, Any]) -> dict[str, Any]:
        return {k: body.get(k) for k in expected}

    app = create_app(own, database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            for u in users:
                events = [{"event_type": "vote", "session_id": f"s-{u}",
                           "event_data": {"show_id": show}} for _ in range(2)]  # fmt: skip
                events.append({"event_type": "show_view", "session_id": f"s-{u}",
                               "event_data": {"show_id": show}})  # fmt: skip
                r = await c.post(EVENTS, json={"events": events},
                                 headers={"Authorization": f"Bearer {token_for(u)}"})  # fmt: skip
                assert r.status_code == 202
            for i in range(4):
                r = await c.post(
                    EVENTS, json={"event_type": "search", "anonymous_id": f"v{i}-{show}"}
                )
                assert r.status_code == 202

            async def live_as_expected() -> dict[str, Any] | None:
                body: dict[str, Any] = (await c.get("/api/analytics/live")).json()
                return body if observed(body) == expected else None

            # the recorder writes to Redis after commit, within its interval: wait for it
            after = await until(live_as_expected, f"live metrics of {expected}", within=5)
    # per minute by type adds up to the hour (the events may straddle a minute boundary)
    assert sum(m["events"].get("vote", 0) for m in after["events_per_minute"]) == 6


async def test_key_prefixes_keep_deployments_sharing_a_redis_apart(redis_url: str) -> None:
    redis = make_redis(redis_url)
    ours, theirs = (f"prefix-test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    recorder = LiveMetricsRecorder(redis, prefix=ours)
    vote = EventRow(
        message_id=uuid.uuid4().hex, user_id=uuid.uuid4(), anonymous_id=None, session_id=None,
        event_type="vote", page_url=None, properties='{"show_id": "42"}', source="api",
        created_at=datetime.now(UTC),
    )  # fmt: skip
    recorder.record([vote])
    await recorder.flush()
    mine = await read_live_metrics(redis, prefix=ours)
    other = await read_live_metrics(redis, prefix=theirs)
    assert (mine["concurrent_users"], mine["votes_last_hour"]) == (1, 1)
    assert mine["active_shows"] == [{"show_id": "42", "score": 1}]
    assert (other["concurrent_users"], other["votes_last_hour"], other["active_shows"]) == (
        0,
        0,
        [],
    )
    # the active-user sets expire on their own once a deployment goes quiet
    assert 0 < await redis.ttl(f"{ours}:live:users") <= 600
    await redis.aclose()


async def test_redis_down_ingest_still_acks_and_live_is_degraded(
    settings: Settings, database_url: str, runtime: Runtime
) -> None:
    from mysetlist.api import create_app

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    assert (await read_live_metrics(make_redis(dead_redis)))["status"] == "degraded"
    app = create_app(settings, database_url, dead_redis)
    marker = "noredis-" + uuid.uuid4().hex
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            failed_open_before = _metric((await c.get("/metrics")).text, FAILED_OPEN)
            for _ in range(5):
                r = await c.post(EVENTS, json={"event_type": "search", "anonymous_id": marker})
                assert r.status_code == 202, r.text
            failed_open = _metric((await c.get("/metrics")).text, FAILED_OPEN) - failed_open_before
            live = (await c.get("/api/analytics/live")).json()
    assert live["status"] == "degraded"
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 5
    # the rate limiter failed open and then stayed open for a while instead of trying the
    # dead Redis (a connect timeout each time, on a blackholed host) on every request
    assert 1 <= failed_open < 5


async def test_rate_limit_gives_429_with_retry_after(
    settings: Settings,
    database_url: str,
    redis_url: str,
    token_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mysetlist.api import create_app

    monkeypatch.setenv("MYSETLIST_RATE_LIMIT_ANONYMOUS", "5/minute")
    monkeypatch.setenv("MYSETLIST_RATE_LIMIT_USER", "3/minute")
    # Windows of its own (a fresh key prefix): a window starts at its first hit, so every
    # count below is this test's.
    own = settings.model_copy(update={"redis_key_prefix": f"limit-test-{uuid.uuid4().hex[:8]}"})
    app = create_app(own, database_url, redis_url)
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            # distinct "IPs" are not possible on loopback: one anonymous caller
            statuses = []
            for _ in range(7):
                r = await c.post(EVENTS, json={"event_type": "search", "anonymous_id": "rl"})
                statuses.append(r.status_code)
            limited = r
            user = str(uuid.uuid4())
            auth = {"Authorization": f"Bearer {token_for(user)}"}
            user_statuses = [
                (await c.post(EVENTS, json={"event_type": "search"}, headers=auth)).status_code
                for _ in range(4)
            ]
    assert statuses == [202] * 5 + [429] * 2
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert user_statuses == [202] * 3 + [429]


async def test_metrics_endpoint_has_routes_batches_queue_and_lag(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        before = time.time()
        # no timestamp: the event's time is when the API received it
        r = await c.post(EVENTS, json={"event_type": "search", "anonymous_id": "m"})
        assert r.status_code == 202
        assert (await c.get("/no-such-page-" + uuid.uuid4().hex)).status_code == 404
        text = (await c.get("/metrics")).text
        after = time.time()
    assert 'mysetlist_http_request_duration_seconds_bucket{le="0.005",method="POST",' in text
    # paths no route matched share one label, so scanners cannot grow the label set
    assert 'mysetlist_http_responses_total{method="GET",route="<unmatched>",status="404"}' in text
    assert "no-such-page" not in text
    assert 'route="/api/analytics/events"' in text
    assert (
        'mysetlist_http_responses_total{method="POST",route="/api/analytics/events",status="202"}'
        in text
    )
    assert "mysetlist_group_commit_batch_events_count" in text
    assert "mysetlist_group_commit_queue_events" in text
    # the newest committed event is ours, and the lag is its age when /metrics was read
    newest = _metric(text, "mysetlist_ingest_newest_committed_timestamp_seconds")
    assert before <= newest <= after
    assert 0 <= _metric(text, "mysetlist_ingest_lag_seconds") <= after - before
