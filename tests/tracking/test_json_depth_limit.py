"""Deeply nested JSON gets a 400 naming the depth limit on every ingest endpoint (it was a
500 from orjson's recursion limit at depth >= 254), and a body at the limit is accepted."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.tracking.wire.validation import MAX_JSON_DEPTH
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

KEY = "test-write-key"
SEGMENT_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}


def _nested(levels: int) -> bytes:
    """`levels` objects inside each other, {"n": {"n": … {}}}, as JSON text (our JSON
    library cannot write what it was asked to refuse)."""
    return b'{"n":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


# endpoint → (body holding `props` as the event's properties, the nesting level at which the
# properties object sits in that body, credentials, the success status)
Body = Callable[[str, dict[str, Any]], Any]
ENDPOINTS: dict[str, tuple[Body, int, dict[str, str], int]] = {
    "/api/analytics/events": (
        lambda m, p: {"event_type": "search", "anonymous_id": m, "event_data": p}, 2, {}, 202,
    ),
    "/v1/batch": (
        lambda m, p: {"batch": [{"type": "track", "event": "search", "anonymousId": m,
                                 "properties": p}]},
        4, SEGMENT_AUTH, 200,
    ),
    "/v1/track": (
        lambda m, p: {"event": "search", "anonymousId": m, "properties": p}, 2, SEGMENT_AUTH, 200,
    ),
    "/batch/": (
        lambda m, p: {"api_key": KEY, "batch": [{"event": "search", "distinct_id": m,
                                                 "properties": p}]},
        4, {}, 200,
    ),
    "/i/v0/e/": (
        lambda m, p: {"api_key": KEY, "event": "search", "distinct_id": m, "properties": p},
        2, {}, 200,
    ),
}  # fmt: skip


@pytest.mark.parametrize("path", list(ENDPOINTS))
async def test_nesting_beyond_the_limit_is_a_400_naming_it(
    api_url: str, runtime: Runtime, path: str
) -> None:
    make, props_level, auth, ok = ENDPOINTS[path]
    marker = "deep-" + uuid.uuid4().hex

    def body(total_depth: int) -> bytes:
        placeholder = orjson.dumps(make(marker, {"placeholder": True}))
        return placeholder.replace(b'{"placeholder":true}', _nested(total_depth - props_level + 1))

    async with httpx.AsyncClient(base_url=api_url) as c:
        # 255 and 300: where orjson's recursion limit gave a 500; 1100: beyond orjson's
        # parser limit; none needs a token or a write key to be answered
        for depth in (MAX_JSON_DEPTH + 1, 255, 300, 1100):
            r = await c.post(
                path, content=body(depth), headers={"content-type": "application/json"}
            )
            assert r.status_code == 400, (depth, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert f"limit of {MAX_JSON_DEPTH}" in r.json()["detail"]
            assert r.json()["errors"][0]["field"] == "body"
        assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0
        at_limit = await c.post(
            path, content=body(MAX_JSON_DEPTH),
            headers={"content-type": "application/json", **auth},
        )  # fmt: skip
        assert at_limit.status_code == ok, at_limit.text
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 1
