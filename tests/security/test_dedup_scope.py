"""Issue 15 item 9: message-id dedup was global, so an anonymous sender who posted message
id M first made a fan's later event with M vanish (202, not stored). A message id is now
unique per sender: the token's user, a server write key, or an anonymous visitor (for a
public browser key: the key and the visitor). A sender's own retry is still stored once.
Both write paths are attacked: a small flush (one INSERT of arrays) and a COPY flush."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from tests.security.fans import EVENTS, basic, bearer, mid, new_fan, own_events, post

pytestmark = pytest.mark.db
SERVER_KEY = "test-write-key"  # tests/conftest.py: MYSETLIST_WRITE_KEYS=server:test-write-key
COPY_BATCH = 100  # above group_commit.SMALL_FLUSH: staged with COPY


async def _stored(runtime: Runtime, message_id: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT user_id::text, anonymous_id, source FROM analytics.user_events"
        " WHERE message_id = %s ORDER BY received_at",
        (message_id,),
    )


@pytest.mark.parametrize("path", ["small flush", "COPY flush"])
async def test_an_anonymous_sender_cannot_make_a_fans_event_vanish(
    api_url: str, runtime: Runtime, token_for: Any, path: str
) -> None:
    fan = await new_fan(runtime)
    taken = mid()  # a message id the attacker learnt or guessed
    filler = (
        [{"event_type": "page_view", "message_id": mid()} for _ in range(COPY_BATCH)]
        if path == "COPY flush"
        else []
    )
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, json={"events": [
            {"event_type": "vote", "anonymous_id": "squatter-" + mid(), "message_id": taken},
            *[{**f, "anonymous_id": "squatter"} for f in filler],
        ]})  # fmt: skip
        assert r.status_code == 202, r.text
        for _ in range(2):  # the fan's event, and the fan's own retry of it
            r = await c.post(
                EVENTS,
                json={"events": [{"event_type": "vote", "message_id": taken},
                                 *[{**f, "message_id": mid()} for f in filler]]},
                headers=bearer(token_for(fan)),
            )  # fmt: skip
            assert r.status_code == 202, r.text
        assert taken in await own_events(c, token_for(fan))
    assert [r["user_id"] for r in await _stored(runtime, taken)] == [None, fan]


async def test_write_key_senders_and_visitors_are_scoped_apart(
    api_url: str, runtime: Runtime, browser_key: str
) -> None:
    taken = mid()
    visitor, other_visitor = "v-" + mid(), "w-" + mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        # a visitor on the public browser key uses the id first...
        for anonymous in (visitor, visitor, other_visitor):  # (the second: its own retry)
            r = await c.post("/v1/track", headers=basic(browser_key), json={
                "event": "search", "anonymousId": anonymous, "messageId": taken})  # fmt: skip
            assert r.status_code == 200, r.text
        # ...which hides neither the backend's event (server key) nor an anonymous one
        for _ in range(2):
            r = await c.post("/v1/track", headers=basic(SERVER_KEY), json={
                "event": "search", "anonymousId": visitor, "messageId": taken})  # fmt: skip
            assert r.status_code == 200, r.text
        await post(c, {"event_type": "search", "anonymous_id": visitor, "message_id": taken})
    rows = await _stored(runtime, taken)
    assert sorted((r["source"], r["anonymous_id"]) for r in rows) == sorted(
        [("segment", visitor), ("segment", other_visitor), ("segment", visitor),
         ("api", visitor)]
    )  # fmt: skip


async def test_one_request_two_anonymous_senders_same_message_id(
    api_url: str, runtime: Runtime
) -> None:
    """Inside one flush the writer keeps the first of a sender's duplicates, per sender."""
    taken = mid()
    a, b = "a-" + mid(), "b-" + mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, json={"events": [
            {"event_type": "share", "anonymous_id": a, "message_id": taken},
            {"event_type": "share", "anonymous_id": b, "message_id": taken},
            {"event_type": "share", "anonymous_id": a, "message_id": taken},
        ]})  # fmt: skip
        assert r.status_code == 202, r.text
    assert sorted(r["anonymous_id"] for r in await _stored(runtime, taken)) == sorted([a, b])
