"""Issue 15 item 14: event types are free text from any sender. They are limited in length
(64) and charset (ASCII letters, digits, `_ . : $ - /`, inner spaces) with a clear 4xx
naming the field, and the public `GET /api/analytics/live` does not echo free-text names:
only the platform's own event types are named there, the rest count as `other` (operators
see every name on the dashboard)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.tracking.live_metrics import read_live_metrics
from tests.conditions import until
from tests.conftest import serve_app
from tests.security.fans import EVENTS, basic, mid

pytestmark = pytest.mark.db
SERVER_KEY = "test-write-key"

REFUSED = {
    "too long": "x" * 65,
    "non-ASCII letters": "página_vista",
    "markup": "<img src=x onerror=alert(1)>",
    "quotes": 'vote"; DROP TABLE',
    "newline": "vote\nadmin_login",
    "trailing newline": "vote\n",  # Python's $ would match before it; the check must not
    "tab": "vote\tx",
    "leading space": " vote",
    "trailing space": "vote ",
    "right-to-left override": "vote\u202eetov",
    "zero-width space": "vo\u200bte",
    "empty": "",
}
ACCEPTED = ["$pageview", "Order Completed", "x" * 64, "checkout:step/2", "show_view"]


async def _count(runtime: Runtime, message_ids: list[str]) -> int:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.user_events WHERE message_id = ANY(%s)",
        (message_ids,),
    )
    assert row is not None
    return int(row["n"])


async def test_event_types_outside_the_limits_are_refused_and_nothing_is_stored(
    api_url: str, runtime: Runtime
) -> None:
    sent: list[str] = []
    async with httpx.AsyncClient(base_url=api_url) as c:
        for why, name in REFUSED.items():
            m = mid()
            sent.append(m)
            r = await c.post(EVENTS, json={"event_type": name, "anonymous_id": "a-" + m,
                                           "message_id": m})  # fmt: skip
            assert r.status_code == 422, (why, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            error = r.json()["errors"][0]
            assert error["field"] == "event_type", why
            # the message says what an event type may be (or how long)
            assert "ASCII" in error["message"] or "character" in error["message"], error
            r = await c.post(
                "/v1/track",
                headers=basic(SERVER_KEY),
                json={"event": name, "anonymousId": "a", "messageId": mid()},
            )
            assert r.status_code == 400, (why, r.text)
            r = await c.post(
                "/i/v0/e/",
                json={
                    "api_key": SERVER_KEY,
                    "event": name,
                    "distinct_id": "d",
                    "uuid": str(uuid.uuid4()),
                },
            )
            assert r.status_code == 400, (why, r.text)
        # in a batch, one bad name refuses the whole request
        good = mid()
        sent.append(good)
        r = await c.post(EVENTS, json={"events": [
            {"event_type": "vote", "anonymous_id": "a", "message_id": good},
            {"event_type": "x" * 65, "anonymous_id": "a", "message_id": mid()},
        ]})  # fmt: skip
        assert r.status_code == 422
        assert r.json()["errors"][0]["index"] == 1
        assert await _count(runtime, sent) == 0
        ok = [mid() for _ in ACCEPTED]
        for name, m in zip(ACCEPTED, ok, strict=True):
            r = await c.post(EVENTS, json={"event_type": name, "anonymous_id": "a",
                                           "message_id": m})  # fmt: skip
            assert r.status_code == 202, (name, r.text)
    assert await _count(runtime, ok) == len(ACCEPTED)


async def test_public_live_metrics_do_not_echo_free_text_event_names(
    settings: Settings, database_url: str, redis_url: str, runtime: Runtime
) -> None:
    from mysetlist.api import create_app

    # An API with live metrics of its own (a fresh key prefix): every count is this test's.
    own = settings.model_copy(update={"redis_key_prefix": f"live-sec-{uuid.uuid4().hex[:8]}"})
    slogan = "Buy cheap tickets at evil.example"
    app = create_app(own, database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            for name in (slogan, slogan, "vote", "page_view"):
                r = await c.post(EVENTS, json={"event_type": name, "anonymous_id": "v-" + mid()})
                assert r.status_code == 202, r.text

            async def settled() -> dict[str, Any] | None:
                body: dict[str, Any] = (await c.get("/api/analytics/live")).json()
                return body if sum(body.get("events_last_hour", {}).values()) == 4 else None

            body = await until(settled, "the live metrics recorder")
            text = (await c.get("/api/analytics/live")).text
    assert body["events_last_hour"] == {"other": 2, "vote": 1, "page_view": 1}
    assert all(set(m["events"]) <= {"other", "vote", "page_view"}
               for m in body["events_per_minute"])  # fmt: skip
    assert "evil.example" not in text
    # operators (the dashboard reads Redis directly) still see the name, as user text
    raw = await read_live_metrics(runtime.redis, prefix=own.redis_key_prefix)
    assert raw["events_last_hour"][slogan] == 2
