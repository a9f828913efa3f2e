"""Issue 15 item 11 (tracking and privacy routes): odd input is a clear 4xx, never a 5xx.
NUL (PostgreSQL text cannot hold it), other control characters, invalid UTF-8, huge numbers
and very long values, in every query parameter of the tracking and privacy routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from tests.security.fans import bearer, new_fan

pytestmark = pytest.mark.db

ODD = [
    "%00", "a%00b", "%01", "%7f", "%ff%fe", "%C0%80", "9" * 40, "x" * 5000, "-1", "%20",
    # times at the edges of the representable (an offset pushing them past year 9999 or 1)
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00%2B23:59", "1e400",
]  # fmt: skip
# route -> the query parameters it takes, and who calls it
FAN_ROUTES = {
    "/api/analytics/events": ["event_type", "user_id", "since", "until", "limit", "cursor"],
}
OPERATOR_ROUTES = {
    "/api/privacy/audit": [
        "action", "outcome", "actor_id", "target_id", "request_id", "since", "until",
        "before_id", "limit",
    ],
}  # fmt: skip


async def test_the_reported_nul_queries_are_4xx(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    fan = await new_fan(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.get("/api/analytics/events?event_type=%00", headers=bearer(token_for(fan)))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        operator = bearer(token_for(fan, admin=True))
        for param in ("target_id", "request_id"):
            r = await c.get(f"/api/privacy/audit?{param}=%00", headers=operator)
            assert r.status_code == 422, (param, r.text)


async def test_every_query_parameter_of_tracking_and_privacy_routes_takes_odd_input(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    fan = await new_fan(runtime)
    callers = [(FAN_ROUTES, bearer(token_for(fan))),
               (OPERATOR_ROUTES, bearer(token_for(fan, admin=True)))]  # fmt: skip
    failures = []
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        for routes, headers in callers:
            for route, params in routes.items():
                for param in params:
                    for value in ODD:
                        r = await c.get(f"{route}?{param}={value}", headers=headers)
                        if r.status_code >= 500:
                            failures.append((route, param, value[:20], r.status_code))
        for path in ("/api/privacy/erasures/%00", "/api/privacy/erasures/" + "9" * 30,
                     "/api/privacy/users/%00/export", "/v1/%00"):  # fmt: skip
            r = await c.get(path, headers=bearer(token_for(fan, admin=True)))
            if r.status_code >= 500:
                failures.append((path, "", "", r.status_code))
        r = await c.delete("/api/privacy/users/%00", headers=bearer(token_for(fan, admin=True)))
        if r.status_code >= 500:
            failures.append(("DELETE /api/privacy/users/%00", "", "", r.status_code))
    assert failures == []


async def test_odd_bodies_on_the_tracking_write_routes_are_4xx(api_url: str) -> None:
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/analytics/events", {"content": b'{"event_type":"a\\u0000","anonymous_id":"x"}'}),
        ("/api/analytics/events", {"content": b'{"event_type":"a","anonymous_id":"x\x00"}'}),
        ("/api/analytics/events", {"content": b'{"event_type":"a","anonymous_id":"\xff\xfe"}'}),
        ("/api/analytics/events", {"json": {"event_type": "a", "anonymous_id": "x" * 201}}),
        ("/api/analytics/events", {"json": {"event_type": "a", "session_id": "s",
                                            "timestamp": "99999-01-01T00:00:00Z"}}),
        ("/api/analytics/anonymous-id", {"json": {"anonymous_id": "x" * 201}}),
        ("/api/analytics/anonymous-id", {"content": b'{"anonymous_id":"\\u0000"}',
                                         "headers": {"content-type": "application/json"}}),
        ("/v1/track", {"content": b"data=%00", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),
        ("/batch/", {"content": b"data=%00&compression=base64", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=api_url) as c:
        for path, request in bodies:
            r = await c.post(path, **request)
            assert r.status_code < 500, (path, request, r.status_code, r.text)
            if path != "/api/analytics/anonymous-id" or "x" * 201 in str(request):
                assert 400 <= r.status_code < 500, (path, request, r.text)
