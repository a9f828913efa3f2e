"""Issue 15 items 5 and 6: erasure leaves nothing of the user, whichever way they got into
the data, and the user's signed ids stop working. A user is seeded through every path: a
row in every table that declares personal data (push subscriptions and the demo's truth
tables included: the demo's tables declare like every other), signed ids obtained and
linked over HTTP, browser-key claims in the user's name (Segment userId, PostHog
distinct_id), a server key's identify, and another fan's event carrying the user's id and
claim. After `DELETE /api/privacy/me` every column of every table and every Redis key is
scanned for every identifier of the user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.demo import loaders
from mysetlist.privacy.discovery import personal_columns, undeclared_suspects
from tests.conditions import until
from tests.privacy.seeding import (
    find_in_database,
    find_in_redis,
    new_user,
    redis_prefix,
    seed_store,
)
from tests.security.fans import (
    EVENTS,
    basic,
    bearer,
    erase_me,
    mid,
    new_fan,
    post,
    signed_ids,
    stable,
    stored,
)

pytestmark = pytest.mark.db
KEPT = {"notify.suppressions": ["address_hash"]}  # a bounced address stays suppressed
SERVER_KEY = "test-write-key"  # tests/conftest.py: MYSETLIST_WRITE_KEYS=server:test-write-key


@pytest.fixture(scope="module")
def demo_truth_tables(database_url: str) -> None:
    """The demo's schema, as `mysetlist demo` makes it in a deployment's database."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        loaders.ensure_truth_schema(cur)


async def test_the_demos_tables_about_users_declare_it(
    runtime: Runtime, demo_truth_tables: None
) -> None:
    async with runtime.db.transaction() as conn:
        tables = {c.qualified_table for c in await personal_columns(conn)}
        suspects = await undeclared_suspects(conn)
    assert {"demo_truth.user_profile", "demo_truth.user_taste"} <= tables
    assert [s for s in suspects if s.startswith("demo_truth.")] == []


async def test_erase_then_scan_finds_nothing_of_a_user_seeded_through_every_path(
    api_url: str, runtime: Runtime, token_for: Any, browser_key: str, demo_truth_tables: None
) -> None:
    user, other = new_user(runtime.cipher), new_user(runtime.cipher)
    seeded = await seed_store(runtime, user, other)
    assert {"app.push_subscriptions", "demo_truth.user_profile", "demo_truth.user_taste",
            "analytics.user_events", "analytics.identity_links"} <= seeded  # fmt: skip
    bystander = await new_fan(runtime, "Bystander")
    device, server_device = "dev-" + mid(), "srv-" + mid()
    claims = {"segment": mid(), "segment_device": mid(), "posthog": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=api_url) as c:
        # signed ids: a visit before signing in, then signing in with them (proof: a link)
        ids = await signed_ids(c)
        token, session = ids["anonymous_id"], ids["session_id"]
        await post(c, {"event_type": "page_view", "anonymous_id": token, "session_id": session,
                       "message_id": mid()})  # fmt: skip
        await post(c, {"event_type": "follow", "anonymous_id": token, "session_id": session,
                       "message_id": mid()}, token_for(user.user_id))  # fmt: skip
        # browser-key claims in the user's name, with and without a device id
        r = await c.post(
            "/v1/track",
            headers=basic(browser_key),
            json={"event": "vote", "userId": user.user_id, "messageId": claims["segment"]},
        )
        assert r.status_code == 200, r.text
        r = await c.post("/v1/track", headers=basic(browser_key), json={
            "event": "vote", "userId": user.user_id, "anonymousId": device,
            "messageId": claims["segment_device"]})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post(
            "/i/v0/e/",
            json={
                "api_key": browser_key,
                "event": "vote",
                "distinct_id": user.user_id,
                "uuid": claims["posthog"],
            },
        )
        assert r.status_code == 200, r.text
        # a server key identifies one of the user's devices
        r = await c.post(
            "/v1/identify",
            headers=basic(SERVER_KEY),
            json={"userId": user.user_id, "anonymousId": server_device, "messageId": mid()},
        )
        assert r.status_code == 200, r.text
        # another fan's own event carrying the user's signed id and claiming the user
        theirs = mid()
        await post(c, {"event_type": "share", "anonymous_id": token, "message_id": theirs},
                   token_for(bystander))  # fmt: skip
        for m in claims.values():
            row = await stored(runtime, m)
            assert row is not None
            assert (row["user_id"], row["claimed_user_id"]) == (None, user.user_id)
        needles = [*user.needles(), token, session, stable(token), stable(session), device,
                   server_device]  # fmt: skip
        async with runtime.db.transaction() as conn:
            before = await find_in_database(conn, needles, kept=KEPT)
        assert {hit.split(":")[0] for hit in before} >= seeded - {"notify.suppressions"}

        # Live metrics reach Redis after commit, within a second: the erasure comes after.
        live_users = f"{redis_prefix()}:live:users"
        await until(
            lambda: runtime.redis.zscore(live_users, bystander), "the live metrics recorder"
        )
        status = await erase_me(c, runtime, token_for(user.user_id))
        assert status["counts"]["analytics.user_events"]["detached"] >= 1  # the bystander's

        async with runtime.db.transaction() as conn:
            after = await find_in_database(conn, needles, kept=KEPT)
            other_left = await find_in_database(conn, other.needles(), kept=KEPT)
        assert after == [], after
        assert await find_in_redis(runtime.redis, redis_prefix(), user.redis_needles()) == []
        assert {hit.split(":")[0] for hit in other_left} >= seeded - {"notify.suppressions"}
        # the bystander's event stays theirs, without the erased user's id
        kept = await stored(runtime, theirs)
        assert kept is not None
        assert (kept["user_id"], kept["anonymous_id"]) == (bystander, None)

        # the erased user's signed ids are revoked: not renewed, never linked again, and
        # (once the API process reloaded its revocations, within seconds) refused outright
        renewed = await signed_ids(c, {"anonymous_id": token, "session_id": session})
        assert renewed["renewed"] == []
        assert stable(renewed["anonymous_id"]) != stable(token)
        newcomer = await new_fan(runtime, "Newcomer")
        sent: list[str] = []

        async def refused() -> bool:
            sent.append(mid())
            r = await c.post(EVENTS, headers=bearer(token_for(newcomer)), json={
                "event_type": "page_view", "anonymous_id": token, "session_id": session,
                "message_id": sent[-1]})  # fmt: skip
            assert r.status_code in (202, 422), r.text
            return r.status_code == 422 and "revoked" in r.text

        await until(refused, "the API to refuse the revoked signed id")
        r = await c.post(EVENTS, json={"event_type": "page_view", "anonymous_id": token})
        assert r.status_code == 422, r.text  # anonymous as well
    links = await runtime.db.fetch_all(
        "SELECT id FROM analytics.identity_links WHERE id = ANY(%s)",
        ([stable(token), stable(session)],),
    )
    assert links == []  # not even while the process still accepted the token
    assert (await stored(runtime, sent[-1])) is None
