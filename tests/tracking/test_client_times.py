"""Client-sent times outside 1970 to 2199 (UTC) are a 4xx naming the field on every ingest
endpoint. Before, a time before year 1 in UTC was stored (PostgreSQL holds it) and then
broke every read of the user's events with a 500, and a far `sentAt` overflowed the
clock-error correction into a 500."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

KEY = "test-write-key"
SEGMENT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
BEFORE_YEAR_ONE_UTC = "0001-01-01T00:00:00+01:00"


def _fields(r: httpx.Response) -> set[str]:
    return {e["field"] for e in r.json()["errors"]}


async def test_own_endpoint_refuses_implausible_times_and_reads_stay_whole(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    user = str(uuid.uuid4())
    auth = {"Authorization": f"Bearer {token_for(user)}"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        for when in (BEFORE_YEAR_ONE_UTC, "1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z"):
            r = await c.post("/api/analytics/events", headers=auth,
                             json={"event_type": "search", "timestamp": when})  # fmt: skip
            assert r.status_code == 422, (when, r.text)
            assert _fields(r) == {"timestamp"}
            assert "1970" in r.json()["errors"][0]["message"]
        epoch = {"event_type": "search", "timestamp": "1970-01-01T00:00:00Z"}
        r = await c.post("/api/analytics/events", headers=auth, json=epoch)
        assert r.status_code == 202, r.text
        listed = await c.get("/api/analytics/events", headers=auth)
    assert listed.status_code == 200, listed.text
    created = [datetime.fromisoformat(e["created_at"]) for e in listed.json()["events"]]
    assert created == [datetime(1970, 1, 1, tzinfo=UTC)]


async def test_segment_and_posthog_refuse_implausible_times(api_url: str, runtime: Runtime) -> None:
    marker = "times-" + uuid.uuid4().hex
    track = {"type": "track", "event": "search", "anonymousId": marker}
    ph = {"event": "search", "distinct_id": marker}
    async with httpx.AsyncClient(base_url=api_url) as c:
        cases = [
            # a far sentAt and a far timestamp: the correction overflowed datetime (500)
            (await c.post("/v1/batch", headers=SEGMENT_AUTH, json={
                "sentAt": "0001-01-02T00:00:00Z",
                "batch": [{**track, "timestamp": "9999-12-30T00:00:00Z"}],
            }), "sentAt"),
            (await c.post("/v1/batch", headers=SEGMENT_AUTH, json={
                "batch": [{**track, "timestamp": "9999-12-30T00:00:00Z",
                           "sentAt": "0001-01-02T00:00:00Z"}],
            }), "timestamp"),
            (await c.post("/v1/track", headers=SEGMENT_AUTH,
                          json={**track, "timestamp": BEFORE_YEAR_ONE_UTC}), "timestamp"),
            (await c.post("/batch/", json={"api_key": KEY, "batch": [
                {**ph, "timestamp": BEFORE_YEAR_ONE_UTC}]}), "timestamp"),
            (await c.post("/i/v0/e/", json={"api_key": KEY, **ph,
                                            "sent_at": "1900-01-01T00:00:00Z"}), "sent_at"),
        ]  # fmt: skip
    for r, field in cases:
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert field in _fields(r), r.json()
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0
