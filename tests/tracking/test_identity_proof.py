"""Identity that can't be hijacked (issue 7, defect 1): linking an anonymous or session id to
a user needs proof of possession (a server-signed id) or a trusted `server` write key; a
`browser` write key's user ids are only claims. Real API, database and Redis; what a user
can see is read the way they would read it, through `GET /api/analytics/events`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.tracking import write_keys
from mysetlist.tracking.signed_ids import SignedIds

pytestmark = pytest.mark.db

EVENTS = "/api/analytics/events"
SERVER_KEY = "test-write-key"  # tests/conftest.py: MYSETLIST_WRITE_KEYS=server:test-write-key


@pytest.fixture(scope="module")
def browser_key(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url) as conn:
        key_id, key = write_keys.create_key(conn, "web (test)", "browser")
    yield key
    with psycopg.connect(database_url) as conn:
        write_keys.revoke_key(conn, str(key_id))


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _mid() -> str:
    return uuid.uuid4().hex


async def _signed_ids(c: httpx.AsyncClient) -> dict[str, str]:
    r = await c.post("/api/analytics/anonymous-id")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    ids: dict[str, str] = r.json()
    return ids


async def _visible_to(c: httpx.AsyncClient, token: str) -> set[str]:
    """The message ids of the events this user sees as their own."""
    r = await c.get(EVENTS, params={"limit": 500}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {e["message_id"] for e in r.json()["events"]}


async def _post(c: httpx.AsyncClient, body: dict[str, Any], token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await c.post(EVENTS, json=body, headers=headers)
    assert r.status_code == 202, r.text


async def _links(runtime: Runtime, *ids: str) -> list[dict[str, Any]]:
    return await runtime.db.fetch_all(
        "SELECT kind, id, user_id::text FROM analytics.identity_links WHERE id = ANY(%s)",
        (list(ids),),
    )


async def _stored(runtime: Runtime, message_id: str) -> dict[str, Any]:
    row = await runtime.db.fetch_one(
        "SELECT user_id::text, anonymous_id, properties, claimed_user_id::text"
        " FROM analytics.user_events"
        " WHERE message_id = %s",
        (message_id,),
    )
    assert row is not None
    return row


def test_signed_ids_are_unique_and_bound_to_their_kind_and_key() -> None:
    ids = SignedIds(b"k" * 32)
    anon, session = ids.issue("anonymous"), ids.issue("session")
    assert ids.is_signed("anonymous", anon)
    assert ids.is_signed("session", session)
    assert anon != ids.issue("anonymous")
    assert not ids.is_signed("session", anon)  # a session id never passes as an anonymous id
    assert not ids.is_signed("anonymous", session)
    assert not ids.is_signed("anonymous", SignedIds(b"o" * 32).issue("anonymous"))
    body, _, sig = anon.rpartition(".")
    assert not ids.is_signed("anonymous", body + "." + sig[::-1])  # tampered signature
    assert not ids.is_signed("anonymous", "anon_1")


async def test_a_token_with_someone_elses_anonymous_id_reads_none_of_their_history(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    """The reported hijack: A posts with the victim's (guessable, unsigned) ids, then reads."""
    attacker, victim = uuid.uuid4(), uuid.uuid4()
    anon, session = "anon-" + _mid(), "sess-" + _mid()
    earlier, later, own = _mid(), _mid(), _mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        await _post(c, {"event_type": "search", "anonymous_id": anon, "session_id": session,
                        "message_id": earlier, "event_data": {"q": "secret"}})  # fmt: skip
        await _post(c, {"event_type": "page_view", "anonymous_id": anon, "session_id": session,
                        "message_id": own}, token_for(attacker))  # fmt: skip
        await _post(c, {"event_type": "search", "anonymous_id": anon, "session_id": session,
                        "message_id": later})  # fmt: skip
        assert await _visible_to(c, token_for(attacker)) == {own}
        # the ids stay a claim on the attacker's own event, linked to nobody
        assert (await _stored(runtime, own))["anonymous_id"] == anon
        assert await _links(runtime, anon, session) == []
        # nor did the victim's events move to anyone
        for mid in (earlier, later):
            assert (await _stored(runtime, mid))["user_id"] is None
        assert await _visible_to(c, token_for(victim)) == set()


async def test_a_signed_id_links_its_visitors_history_and_the_first_link_wins(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    owner, attacker = uuid.uuid4(), uuid.uuid4()
    async with httpx.AsyncClient(base_url=api_url) as c:
        ids = await _signed_ids(c)
        assert ids != await _signed_ids(c)
        anon, session = ids["anonymous_id"], ids["session_id"]
        by_anon, by_session, forged_own = _mid(), _mid(), _mid()
        await _post(c, {"event_type": "artist_view", "anonymous_id": anon,
                        "message_id": by_anon})  # fmt: skip
        await _post(c, {"event_type": "search", "session_id": session,
                        "message_id": by_session})  # fmt: skip
        # a forged signature proves nothing, even on the right-looking id
        forged = anon.rpartition(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        await _post(c, {"event_type": "page_view", "anonymous_id": forged,
                        "message_id": forged_own}, token_for(attacker))  # fmt: skip
        assert await _visible_to(c, token_for(attacker)) == {forged_own}
        # the owner signs in carrying the signed ids: the earlier events become theirs
        sign_in, later = _mid(), _mid()
        await _post(c, {"event_type": "follow", "anonymous_id": anon, "session_id": session,
                        "message_id": sign_in}, token_for(owner))  # fmt: skip
        assert await _visible_to(c, token_for(owner)) == {by_anon, by_session, sign_in}
        # later anonymous events of the linked visitor are the owner's at insert
        await _post(c, {"event_type": "share", "anonymous_id": anon, "message_id": later})
        assert later in await _visible_to(c, token_for(owner))
        # a later holder of the same signed id does not take the history over
        stolen = _mid()
        await _post(c, {"event_type": "page_view", "anonymous_id": anon,
                        "message_id": stolen}, token_for(attacker))  # fmt: skip
        assert await _visible_to(c, token_for(attacker)) == {forged_own, stolen}
    # events and links keep the stable id inside the token, never the token itself
    stable = (anon.split(".")[0], session.split(".")[0])
    links = {(r["kind"], r["user_id"]) for r in await _links(runtime, *stable)}
    assert links == {("anonymous", str(owner)), ("session", str(owner))}
    assert await _links(runtime, anon, session) == []


async def test_browser_key_identify_and_alias_with_unsigned_ids_link_nothing(
    api_url: str, runtime: Runtime, token_for: Any, browser_key: str
) -> None:
    """The hijack through the ecosystem endpoints: PostHog $identify with the victim's id as
    $anon_distinct_id, PostHog $create_alias and Segment alias, all with a public key."""
    attacker = str(uuid.uuid4())
    victim_ph, victim_seg = "ph-" + _mid(), "seg-" + _mid()
    ph_earlier, seg_earlier = str(uuid.uuid4()), _mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/batch/", json={"api_key": browser_key, "batch": [
            {"event": "$pageview", "distinct_id": victim_ph, "uuid": ph_earlier},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/v1/track", headers=_basic(browser_key), json={
            "event": "search", "anonymousId": victim_seg, "messageId": seg_earlier})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/batch/", json={"api_key": browser_key, "batch": [
            {"event": "$identify", "distinct_id": attacker, "uuid": str(uuid.uuid4()),
             "properties": {"$anon_distinct_id": victim_ph}},
            {"event": "$create_alias", "distinct_id": victim_ph, "uuid": str(uuid.uuid4()),
             "properties": {"alias": attacker}},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        alias = _mid()
        r = await c.post("/v1/alias", headers=_basic(browser_key), json={
            "previousId": victim_seg, "userId": attacker, "messageId": alias})  # fmt: skip
        assert r.status_code == 200, r.text
        assert await _visible_to(c, token_for(attacker)) == set()
    assert await _links(runtime, victim_ph, victim_seg) == []
    for mid in (ph_earlier, seg_earlier):
        assert (await _stored(runtime, mid))["user_id"] is None
    # the alias is kept, as a claim
    stored = await _stored(runtime, alias)
    assert (stored["user_id"], stored["claimed_user_id"]) == (None, attacker)


async def test_a_browser_keys_user_id_is_a_claim_not_the_users_event(
    api_url: str, runtime: Runtime, token_for: Any, browser_key: str
) -> None:
    """Today's forgery: `distinct_id` = B's uuid from any key holder landed in B's events."""
    b = str(uuid.uuid4())
    ph, seg = str(uuid.uuid4()), _mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/i/v0/e/", json={"api_key": browser_key, "event": "vote",
                                           "distinct_id": b, "uuid": ph})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/v1/track", headers=_basic(browser_key), json={
            "event": "vote", "userId": b, "messageId": seg})  # fmt: skip
        assert r.status_code == 200, r.text
        assert await _visible_to(c, token_for(b)) == set()
    for mid in (ph, seg):
        stored = await _stored(runtime, mid)
        assert (stored["user_id"], stored["claimed_user_id"]) == (None, b)


async def test_a_browser_key_cannot_pour_its_own_history_into_someone_else(
    api_url: str, token_for: Any, browser_key: str
) -> None:
    """The attacker holds a genuinely signed anonymous id (their own) and identifies it as
    the victim through the public key: a signed id proves the visitor, not the user, so
    nothing joins the victim's history. The visitor links by signing in (our endpoint)."""
    victim = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=api_url) as c:
        anon = (await _signed_ids(c))["anonymous_id"]
        forged_history, identify = str(uuid.uuid4()), str(uuid.uuid4())
        r = await c.post("/batch/", json={"api_key": browser_key, "batch": [
            {"event": "$pageview", "distinct_id": anon, "uuid": forged_history,
             "properties": {"$is_identified": False}},
            {"event": "$identify", "distinct_id": victim, "uuid": identify,
             "properties": {"$anon_distinct_id": anon}},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        assert await _visible_to(c, token_for(victim)) == set()
        # The visitor who signs in as themselves (a JWT) with the same signed id gets it.
        owner = str(uuid.uuid4())
        await _post(c, {"event_type": "page_view", "message_id": _mid(), "anonymous_id": anon},
                    token_for(owner))  # fmt: skip
        assert forged_history in await _visible_to(c, token_for(owner))


async def test_a_server_key_still_identifies_and_aliases(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    user = str(uuid.uuid4())
    device, other_device, ph_device = "d-" + _mid(), "o-" + _mid(), "p-" + _mid()
    earlier, other, ph_earlier = _mid(), _mid(), str(uuid.uuid4())
    own = _mid()
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/v1/batch", headers=_basic(SERVER_KEY), json={"batch": [
            {"type": "track", "event": "search", "anonymousId": device, "messageId": earlier},
            {"type": "track", "event": "search", "anonymousId": other_device,
             "messageId": other},
            {"type": "identify", "userId": user, "anonymousId": device},
            {"type": "alias", "previousId": other_device, "userId": user},
            {"type": "track", "event": "vote", "userId": user, "messageId": own},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/batch/", json={"api_key": SERVER_KEY, "batch": [
            {"event": "$pageview", "distinct_id": ph_device, "uuid": ph_earlier},
            {"event": "$identify", "distinct_id": user, "uuid": str(uuid.uuid4()),
             "properties": {"$anon_distinct_id": ph_device}},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        assert {earlier, other, own, ph_earlier} <= await _visible_to(c, token_for(user))
    assert {r["user_id"] for r in await _links(runtime, device, other_device, ph_device)} == {user}


async def test_keys_cli_sets_trust(
    api_url: str, runtime: Runtime, token_for: Any, database_url: str, redis_url: str,
    tmp_path: Any,
) -> None:  # fmt: skip
    """`keys create` makes browser keys unless told `--trust server`; `keys trust` changes it."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "MYSETLIST_DATA_DIR": str(tmp_path)}  # fmt: skip

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mysetlist", "keys", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    key = cli("create", "--name", "web-cli").strip().splitlines()[-1]
    user = str(uuid.uuid4())

    async def send_as_user() -> str:
        mid = _mid()
        r = await c.post("/v1/track", headers=_basic(key), json={
            "event": "vote", "userId": user, "messageId": mid})  # fmt: skip
        assert r.status_code == 200, r.text
        return mid

    async with httpx.AsyncClient(base_url=api_url) as c:
        claimed = await send_as_user()
        cli("trust", key[:12], "server")
        trusted = await send_as_user()  # tests cache keys for 0 s
        assert await _visible_to(c, token_for(user)) == {trusted}
    assert (await _stored(runtime, claimed))["user_id"] is None
    listed = cli("list")
    assert "web-cli" in listed
    assert "server" in listed
    server_key = cli("create", "--name", "backend", "--trust", "server").strip().splitlines()[-1]
    row = await runtime.db.fetch_one(
        "SELECT trust FROM analytics.write_keys WHERE key_sha256 = %s",
        (write_keys.digest(server_key),),
    )
    assert row == {"trust": "server"}
