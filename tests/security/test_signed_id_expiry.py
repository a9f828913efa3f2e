"""Issue 15 item 6: signed anonymous ids were permanent write credentials. A token now
expires (MYSETLIST_SIGNED_ID_TTL_DAYS, 30 by default), is renewed by posting it to
`POST /api/analytics/anonymous-id`, is stored only as the stable id inside it (so it can
never be shown to anyone), and stops proving anything once expired: an expired token
neither links nor writes into the linked user's history. (Revocation on erasure:
test_erase_then_scan.py.)"""

from __future__ import annotations

import time
import timeit
from datetime import datetime
from typing import Any

import httpx
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.tracking.config import load_tracking_settings
from mysetlist.tracking.signed_ids import SignedIds
from tests.security.fans import (
    EVENTS,
    basic,
    bearer,
    mid,
    new_fan,
    own_events,
    post,
    signed_ids,
    stable,
    stored,
)

pytestmark = pytest.mark.db
DAY = 86400.0


def _signer(runtime: Runtime) -> SignedIds:
    """The API's signer (same key, default lifetime), to mint tokens issued in the past."""
    return SignedIds(runtime.settings.effective_encryption_key)


async def _links(runtime: Runtime, *ids: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT kind, id, user_id::text FROM analytics.identity_links WHERE id = ANY(%s)",
        (list(ids),),
    )


async def test_an_expired_token_neither_links_nor_writes_into_the_linked_history(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    owner, attacker = await new_fan(runtime), await new_fan(runtime)
    signer = _signer(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        # an expired token of a never-linked id, carried by a signed-in fan: no link
        expired = signer.issue("anonymous", now=time.time() - 31 * DAY)
        carried = mid()
        await post(c, {"event_type": "page_view", "anonymous_id": expired,
                       "message_id": carried}, token_for(attacker))  # fmt: skip
        assert await _links(runtime, stable(expired)) == []
        row = await stored(runtime, carried)
        assert row is not None
        assert row["anonymous_id"] == stable(expired)  # the id, never the token
        # the owner links a fresh token; the same id under an expired token then writes
        # nothing into the owner's history, the valid one does
        token = (await signed_ids(c))["anonymous_id"]
        await post(c, {"event_type": "follow", "anonymous_id": token, "message_id": mid()},
                   token_for(owner))  # fmt: skip
        old = signer.issue("anonymous", stable_id=stable(token), now=time.time() - 31 * DAY)
        with_old, with_valid = mid(), mid()
        await post(c, {"event_type": "vote", "anonymous_id": old, "message_id": with_old})
        await post(c, {"event_type": "vote", "anonymous_id": token, "message_id": with_valid})
        mine = await own_events(c, token_for(owner))
    assert with_valid in mine
    assert with_old not in mine
    row = await stored(runtime, with_old)
    assert row is not None
    assert (row["user_id"], row["anonymous_id"]) == (None, stable(token))


async def test_renewal_keeps_the_id_and_moves_the_expiry(api_url: str, runtime: Runtime) -> None:
    signer = _signer(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        first = await signed_ids(c)
        ttl = load_tracking_settings().signed_id_ttl_days * DAY
        expires = datetime.fromisoformat(first["expires_at"]).timestamp()
        assert abs(expires - (time.time() + ttl)) < 60
        current = {"anonymous_id": first["anonymous_id"], "session_id": first["session_id"]}
        renewed = await signed_ids(c, current)
        assert renewed["renewed"] == ["anonymous", "session"]
        for field in ("anonymous_id", "session_id"):
            assert stable(renewed[field]) == stable(first[field])
            assert signer.is_signed(field.split("_")[0], renewed[field])  # type: ignore[arg-type]
        # a day before it expires a token still renews; the renewed one is good for 30 days
        nearly = signer.issue("anonymous", now=time.time() - 29 * DAY)
        again = await signed_ids(c, {"anonymous_id": nearly})
        assert (again["renewed"], stable(again["anonymous_id"])) == (["anonymous"], stable(nearly))
        verified = signer.verify("anonymous", again["anonymous_id"])
        assert verified is not None
        assert verified.expires_at > time.time() + ttl - 60
        # an expired or forged token gets a new id, not its old one
        expired = signer.issue("anonymous", now=time.time() - 31 * DAY)
        forged = SignedIds(b"not the key" * 3).issue("anonymous")
        for bad in (expired, forged):
            fresh = await signed_ids(c, {"anonymous_id": bad})
            assert fresh["renewed"] == []
            assert stable(fresh["anonymous_id"]) != stable(bad)
        refused = await c.post("/api/analytics/anonymous-id", json={"anonymous_id": 7})
        assert refused.status_code == 422


async def test_a_stable_id_without_its_token_is_refused(
    api_url: str, runtime: Runtime, token_for: Any, browser_key: str
) -> None:
    """The stable id is what events store; presenting it bare would let a copy of it pass
    as the visitor. Clients only ever hold tokens, so a bare one is a clear 4xx."""
    fan = await new_fan(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        ids = await signed_ids(c)
        bare, bare_session = stable(ids["anonymous_id"]), stable(ids["session_id"])
        for headers in ({}, bearer(token_for(fan))):
            r = await c.post(EVENTS, json={"event_type": "page_view", "anonymous_id": bare},
                             headers=headers)  # fmt: skip
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == "anonymous_id"
            r = await c.post(EVENTS, json={"event_type": "page_view", "session_id": bare_session},
                             headers=headers)  # fmt: skip
            assert r.status_code == 422, r.text
        r = await c.post("/v1/track", headers=basic(browser_key),
                         json={"event": "vote", "anonymousId": bare})  # fmt: skip
        assert r.status_code == 400, r.text
        r = await c.post("/i/v0/e/", json={"api_key": browser_key, "event": "vote",
                                           "distinct_id": bare})  # fmt: skip
        assert r.status_code == 400, r.text
    count = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.user_events"
        " WHERE anonymous_id = %s OR session_id = %s",
        (bare, bare_session),
    )
    assert count == {"n": 0}


async def test_no_token_is_ever_stored(api_url: str, runtime: Runtime, token_for: Any) -> None:
    """What is stored can be exported, shown on a dashboard or leak: a token never is."""
    fan = await new_fan(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        ids = await signed_ids(c)
        sent = mid()
        await post(
            c,
            {
                "event_type": "page_view",
                "anonymous_id": ids["anonymous_id"],
                "session_id": ids["session_id"],
                "message_id": sent,
            },
            token_for(fan),
        )
    rows = await runtime.db.fetch_all(
        "SELECT 'event' AS what FROM analytics.user_events"
        " WHERE anonymous_id = ANY(%(t)s) OR session_id = ANY(%(t)s)"
        " UNION ALL SELECT 'link' FROM analytics.identity_links WHERE id = ANY(%(t)s)",
        {"t": [ids["anonymous_id"], ids["session_id"]]},
    )
    assert rows == []
    assert {
        r["kind"]
        for r in await _links(runtime, stable(ids["anonymous_id"]), stable(ids["session_id"]))
    } == {"anonymous", "session"}


def test_lifetime_is_configurable_and_verification_is_cached_per_token() -> None:
    assert load_tracking_settings().signed_id_ttl_days == 30
    assert load_tracking_settings(MYSETLIST_SIGNED_ID_TTL_DAYS="2").signed_id_ttl_days == 2
    short = SignedIds(b"k" * 32, ttl_seconds=2 * DAY)
    assert not short.is_signed("anonymous", short.issue("anonymous", now=time.time() - 3 * DAY))
    assert short.is_signed("anonymous", short.issue("anonymous", now=time.time() - 1 * DAY))
    # The ingest hot path checks a visitor's token on every event: one HMAC, then cached.
    hot = SignedIds(b"k" * 32, ttl_seconds=2 * DAY)
    token = hot.issue("session")
    per_call = timeit.timeit(lambda: hot.is_signed("session", token), number=20000) / 20000
    cache = hot._unsign.cache_info()  # type: ignore[attr-defined]
    assert (cache.misses, cache.hits) == (1, 19999)
    assert per_call < 20e-6, per_call
    # expiry is checked against the clock on every call, cached or not
    assert not hot.is_signed("session", token, now=time.time() + 3 * DAY)


async def test_revocations_are_purged_once_every_token_of_the_id_has_expired(
    runtime: Runtime,
) -> None:
    from mysetlist.tracking import maintenance
    from mysetlist.tracking.signed_ids import revocation_digest

    old, recent = revocation_digest("anon_" + mid()[:22]), revocation_digest("anon_" + mid()[:22])
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.revoked_signed_ids (id_sha256, revoked_at)"
            " VALUES (%s, now() - interval '31 days'), (%s, now() - interval '29 days')",
            (old, recent),
        )
    record = await maintenance.partition_upkeep(runtime.db, load_tracking_settings())
    assert record.details["revocations_purged"] >= 1
    left = await runtime.db.fetch_all(
        "SELECT id_sha256 FROM analytics.revoked_signed_ids WHERE id_sha256 = ANY(%s)",
        ([old, recent],),
    )
    assert [bytes(r["id_sha256"]) for r in left] == [recent]
