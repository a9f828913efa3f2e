"""Issue 15 item 1: GDPR export and erasure follow only PROVEN identity (identity links made
with proof of possession), never ids a fan merely put on their own events. Each test is an
attack as a hostile fan would run it, against the real API, database and Redis."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from tests.security.fans import (
    basic,
    erase_me,
    events_of,
    export_of,
    mid,
    new_fan,
    own_events,
    post,
    signed_ids,
    stable,
    stored,
)

pytestmark = pytest.mark.db


async def _rows_with_id(runtime: Runtime, value: str) -> set[str]:
    rows = await runtime.db.fetch_all(
        "SELECT message_id FROM analytics.user_events WHERE anonymous_id = %s OR session_id = %s",
        (value, value),
    )
    return {r["message_id"] for r in rows}


async def test_an_id_a_fan_only_sent_is_neither_exported_nor_erased_as_theirs(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    """The reported attack: one event with someone else's anonymous id (202), then the
    export returned the other person's events and erasure deleted them."""
    victim, attacker = await new_fan(runtime), await new_fan(runtime)
    theirs = f"anon_{random.randrange(10**6)}-{mid()[:6]}"  # a client-made id, like anon_659
    session = "sess-" + mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        anonymous = [mid() for _ in range(3)]
        for m in anonymous:
            await post(c, {"event_type": "page_view", "anonymous_id": theirs,
                           "session_id": session, "message_id": m})  # fmt: skip
        signed_in = [mid() for _ in range(3)]
        for m in signed_in:
            await post(c, {"event_type": "vote", "anonymous_id": theirs, "session_id": session,
                           "message_id": m}, token_for(victim))  # fmt: skip
        # the attack
        own = mid()
        await post(c, {"event_type": "page_view", "anonymous_id": theirs, "session_id": session,
                       "message_id": own}, token_for(attacker))  # fmt: skip
        assert await own_events(c, token_for(attacker)) == {own}
        exported = await export_of(c, token_for(attacker))
        assert {r["message_id"] for r in exported.rows("analytics.user_events")} == {own}
        assert victim.encode() not in exported.raw
        assert exported.rows("analytics.identity_links") == []
        await erase_me(c, runtime, token_for(attacker))
    # every event of the other person is still there, only the attacker's own one went
    assert await _rows_with_id(runtime, theirs) == set(anonymous) | set(signed_in)
    assert await events_of(runtime, victim) == set(signed_in)
    assert await stored(runtime, own) is None


async def test_a_fan_who_once_sent_another_fans_signed_id_gets_none_of_their_links(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    victim, attacker = await new_fan(runtime), await new_fan(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        ids = await signed_ids(c)
        token, session = ids["anonymous_id"], ids["session_id"]
        before = mid()
        await post(c, {"event_type": "search", "anonymous_id": token, "session_id": session,
                       "message_id": before})  # fmt: skip
        signed_in = mid()
        await post(c, {"event_type": "follow", "anonymous_id": token, "session_id": session,
                       "message_id": signed_in}, token_for(victim))  # fmt: skip
        assert await own_events(c, token_for(victim)) == {before, signed_in}
        # the attacker got hold of the victim's tokens and sends them once, signed in
        stolen = mid()
        await post(c, {"event_type": "page_view", "anonymous_id": token, "session_id": session,
                       "message_id": stolen}, token_for(attacker))  # fmt: skip
        exported = await export_of(c, token_for(attacker))
        victims_export = await export_of(c, token_for(victim))
    assert {r["message_id"] for r in exported.rows("analytics.user_events")} == {stolen}
    assert exported.rows("analytics.identity_links") == []
    assert victim.encode() not in exported.raw
    for secret in (token, session):  # a token is never stored, so never exported
        assert secret.encode() not in exported.raw
        assert secret.encode() not in victims_export.raw
    # the victim's export has the victim's links and events, not the attacker's event
    assert {r["user_id"] for r in victims_export.rows("analytics.identity_links")} == {victim}
    assert {r["id"] for r in victims_export.rows("analytics.identity_links")} == {
        stable(token),
        stable(session),
    }
    assert {r["message_id"] for r in victims_export.rows("analytics.user_events")} == {
        before,
        signed_in,
    }


async def test_no_export_holds_a_row_whose_subject_is_another_fan(
    api_url: str, runtime: Runtime, token_for: Any, browser_key: str
) -> None:
    """Three fans cross every id they can: each one's client ids, signed ids and uuid on the
    others' events, and browser-key claims in each other's name. Each export holds only rows
    owned by its fan, or owned by nobody and tied to the fan by a proven id or a claim."""
    fans = [await new_fan(runtime, f"Fan {i}") for i in range(3)]
    proven: dict[str, set[str]] = {}
    async with httpx.AsyncClient(base_url=api_url) as c:
        tokens = {}
        for fan in fans:
            ids = await signed_ids(c)
            tokens[fan] = ids
            await post(c, {"event_type": "page_view", "anonymous_id": ids["anonymous_id"],
                           "session_id": ids["session_id"], "message_id": mid()},
                       token_for(fan))  # fmt: skip
            proven[fan] = {stable(ids["anonymous_id"]), stable(ids["session_id"])}
        for fan in fans:
            for other in fans:
                if other == fan:
                    continue
                # the other's client-made ids, their uuid as an anonymous id, their session
                await post(c, {"event_type": "search", "anonymous_id": f"client-{other}",
                               "session_id": tokens[other]["session_id"], "message_id": mid()},
                           token_for(fan))  # fmt: skip
                await post(c, {"event_type": "share", "anonymous_id": other,
                               "message_id": mid()}, token_for(fan))  # fmt: skip
                # a browser key claiming to be the other, from the fan's own signed visitor id
                r = await c.post("/v1/track", headers=basic(browser_key), json={
                    "event": "vote", "userId": other,
                    "anonymousId": tokens[fan]["anonymous_id"], "messageId": mid()})  # fmt: skip
                assert r.status_code == 200, r.text
                r = await c.post(
                    "/batch/",
                    json={
                        "api_key": browser_key,
                        "batch": [
                            {"event": "vote", "distinct_id": other, "uuid": str(uuid.uuid4())}
                        ],
                    },
                )
                assert r.status_code == 200, r.text
        exports = {fan: await export_of(c, token_for(fan)) for fan in fans}
    for fan, exported in exports.items():
        events = exported.rows("analytics.user_events")
        assert events
        for row in events:
            if row["user_id"] is not None:
                assert row["user_id"] == fan, row
            else:
                assert (
                    row["claimed_user_id"] == fan
                    or row["anonymous_id"] in proven[fan] | {fan}
                    or row["session_id"] in proven[fan]
                ), row
        for table, rows in exported.tables.items():
            for row in rows:
                for column in ("user_id", "actor_id", "requested_by"):
                    assert row.get(column) in (None, fan), (table, row)
        # another fan's id appears only as what this fan typed on their own events
        for table, rows in exported.tables.items():
            for row in rows:
                text = str(row)
                for other in set(fans) - {fan}:
                    if other in text:
                        assert (table, row["user_id"]) == ("analytics.user_events", fan), row
