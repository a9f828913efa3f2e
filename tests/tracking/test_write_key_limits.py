"""Rate limits of the write-key endpoints (Segment, PostHog): per write key for accepted
traffic, and per client for failed key checks (each unknown key is a database lookup)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from tests.conftest import serve_app
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _segment(marker: str) -> dict[str, Any]:
    return {"batch": [{"type": "track", "event": "search", "anonymousId": marker}]}


def _posthog(key: str, marker: str) -> dict[str, Any]:
    return {"api_key": key, "event": "search", "distinct_id": marker}


def _posthog_batch(key: str, marker: str) -> dict[str, Any]:
    return {"api_key": key, "batch": [_posthog(key, marker)]}


@pytest.fixture
def tight_api(
    settings: Settings, database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An API of its own with tight limits, two static write keys, and its own Redis key
    prefix (so other tests' traffic from this same loopback IP does not count)."""
    from mysetlist.api import create_app

    monkeypatch.setenv("MYSETLIST_RATE_LIMIT_WRITE_KEY", "3/minute")
    ours = settings.model_copy(
        update={
            "write_keys": ["key-a", "key-b"],
            "redis_key_prefix": f"wk-{uuid.uuid4().hex[:8]}",
            "auth_failure_rate_limit": "4/minute",  # a core setting, tracking's too
        }
    )
    with serve_app(create_app(ours, database_url, redis_url, with_worker=False)) as url:
        yield url


async def test_write_key_limit_is_per_key_across_segment_and_posthog(
    tight_api: str, runtime: Runtime
) -> None:
    marker = "wk-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=tight_api) as c:
        ok = [
            (await c.post("/v1/batch", json=_segment(marker), headers=_basic("key-a"))).status_code,
            (await c.post("/v1/track", headers=_basic("key-a"),
                          json={"event": "search", "anonymousId": marker})).status_code,
            (await c.post("/i/v0/e/", json=_posthog("key-a", marker))).status_code,
        ]  # fmt: skip
        # the key's window (3/minute) is shared by its Segment and PostHog traffic
        over_segment = await c.post("/v1/batch", json=_segment(marker), headers=_basic("key-a"))
        over_posthog = await c.post("/batch/", json=_posthog_batch("key-a", marker))
        # another key from the same client has a window of its own
        other = await c.post("/v1/batch", json=_segment(marker), headers=_basic("key-b"))
    assert ok == [200, 200, 200]
    for refused in (over_segment, over_posthog):
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "write key" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other.status_code == 200, other.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 4


async def test_failed_write_keys_are_limited_per_client(tight_api: str, runtime: Runtime) -> None:
    marker = "wk-fail-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=tight_api) as c:
        # accepted calls do not count as failures
        for _ in range(2):
            r = await c.post("/v1/batch", json=_segment(marker), headers=_basic("key-b"))
            assert r.status_code == 200, r.text
        # random keys, as a key-guessing client sends them, on both ecosystems
        failures = []
        for i in range(4):
            guess = "msk_" + uuid.uuid4().hex
            if i % 2:
                r = await c.post("/i/v0/e/", json=_posthog(guess, marker))
            else:
                r = await c.post("/v1/batch", json=_segment(marker), headers=_basic(guess))
            failures.append(r)
        assert [r.status_code for r in failures] == [401] * 4
        for r in failures:  # a Basic challenge, as Segment's clients expect
            assert r.headers["www-authenticate"] == 'Basic realm="write key"'
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["title"] == "Unauthorized"
            assert r.json()["detail"] == "a valid write key is required"
        # the window of failures (4/minute) is used up: refused before any key lookup, even
        # with a good key, until it resets
        refused = [
            await c.post("/v1/batch", json=_segment(marker), headers=_basic("msk_guess")),
            await c.post("/batch/", json=_posthog_batch("key-a", marker)),
            await c.post("/v1/track", headers=_basic("key-b"),
                         json={"event": "search", "anonymousId": marker}),
        ]  # fmt: skip
        # our own endpoint takes no write key: its limits are separate
        own = await c.post("/api/analytics/events", json={"event_type": "search",
                                                          "anonymous_id": marker})  # fmt: skip
    for r in refused:
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "failed keys" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
    assert own.status_code == 202, own.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 3
