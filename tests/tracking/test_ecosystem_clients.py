"""The official Segment and PostHog Python clients, pointed at our API, land events."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from posthog import Posthog
from segment.analytics.client import Client as SegmentClient

from mysetlist.core.runtime import Runtime
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

KEY = "test-write-key"


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def _row(runtime: Runtime, message_id: str) -> dict[str, Any]:
    rows = await runtime.db.fetch_all(
        "SELECT user_id::text, anonymous_id, session_id, event_type, page_url, properties,"
        " created_at, source FROM analytics.user_events WHERE message_id = %s",
        (message_id,),
    )
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("use_gzip", [False, True])
async def test_segment_client_lands_track_page_identify(
    api_url: str, runtime: Runtime, use_gzip: bool
) -> None:
    # sync_mode: each call posts at once and raises on a non-2xx (on_error is never called)
    client = SegmentClient(
        write_key=KEY, host=api_url, sync_mode=True, gzip=use_gzip, max_retries=0
    )  # fmt: skip
    user = str(uuid.uuid4())
    anon = "seg-anon-" + uuid.uuid4().hex
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    ids = {
        k: uuid.uuid4().hex for k in ("pre", "track", "page", "identify", "ext", "device", "alias")
    }
    client.track(anonymous_id=anon, event="artist_view", properties={"artist_id": 1},
                 timestamp=when, message_id=ids["pre"])  # fmt: skip
    client.track(user_id=user, event="vote", properties={"show_id": 9, "song_id": 2},
                 timestamp=when, message_id=ids["track"])  # fmt: skip
    client.page(user_id=user, name="Show", properties={"url": "https://mysetlist.app/shows/9"},
                timestamp=when, message_id=ids["page"])  # fmt: skip
    client.identify(user_id=user, anonymous_id=anon, traits={"plan": "fan"},
                    timestamp=when, message_id=ids["identify"])  # fmt: skip
    client.track(user_id="crm-42", event="share", timestamp=when, message_id=ids["ext"])
    # alias: an id seen before sign-up (another device) is merged into the user
    other_device = "seg-device-" + uuid.uuid4().hex
    client.track(anonymous_id=other_device, event="search", timestamp=when,
                 message_id=ids["device"])  # fmt: skip
    client.alias(previous_id=other_device, user_id=user, timestamp=when, message_id=ids["alias"])
    client.flush()
    # every call landed, each exactly once (a lost or doubled call fails here, by id)
    stored = await runtime.db.fetch_all(
        "SELECT message_id FROM analytics.user_events WHERE message_id = ANY(%s)",
        (list(ids.values()),),
    )
    assert sorted(r["message_id"] for r in stored) == sorted(ids.values())

    track = await _row(runtime, ids["track"])
    assert track["user_id"] == user
    assert track["event_type"] == "vote"
    assert track["properties"] == {"show_id": 9, "song_id": 2}
    # the client's sentAt moves it by the network latency (clock-skew correction)
    assert abs(track["created_at"] - when) < timedelta(seconds=1)
    assert track["source"] == "segment"
    page = await _row(runtime, ids["page"])
    assert (page["event_type"], page["page_url"]) == ("page_view", "https://mysetlist.app/shows/9")
    assert page["properties"]["name"] == "Show"
    ident = await _row(runtime, ids["identify"])
    assert ident["event_type"] == "identify"
    assert ident["properties"]["traits"] == {"plan": "fan"}
    # identify linked the earlier anonymous track to the user
    assert (await _row(runtime, ids["pre"]))["user_id"] == user
    # a userId that is not a platform id (uuid) stays anonymous and is kept in properties
    ext = await _row(runtime, ids["ext"])
    assert ext["user_id"] is None
    assert ext["anonymous_id"] == "crm-42"
    assert ext["properties"]["$external_user_id"] == "crm-42"
    alias = await _row(runtime, ids["alias"])
    assert (alias["event_type"], alias["user_id"]) == ("alias", user)
    assert alias["properties"]["previous_id"] == other_device
    assert (await _row(runtime, ids["device"]))["user_id"] == user


@pytest.mark.parametrize("use_gzip", [False, True])
async def test_posthog_client_lands_events(api_url: str, runtime: Runtime, use_gzip: bool) -> None:
    client = Posthog(KEY, host=api_url, sync_mode=True, gzip=use_gzip, max_retries=0)
    user = str(uuid.uuid4())
    anon = "ph-anon-" + uuid.uuid4().hex
    when = datetime(2026, 2, 4, 5, 6, 7, tzinfo=UTC)
    ids = {k: str(uuid.uuid4()) for k in ("anon", "vote", "identify", "device", "alias")}
    client.capture("$pageview", distinct_id=anon, timestamp=when, uuid=ids["anon"],
                   properties={"$current_url": "https://mysetlist.app/a/1",
                               "$session_id": "ph-s1"})  # fmt: skip
    client.capture("vote", distinct_id=user, timestamp=when, uuid=ids["vote"],
                   properties={"show_id": 5})  # fmt: skip
    client.capture("$identify", distinct_id=user, timestamp=when, uuid=ids["identify"],
                   properties={"$anon_distinct_id": anon})  # fmt: skip
    other_device = "ph-device-" + uuid.uuid4().hex
    client.capture("search", distinct_id=other_device, timestamp=when, uuid=ids["device"])
    client.alias(previous_id=other_device, distinct_id=user, timestamp=when, uuid=ids["alias"])
    client.flush()
    client.shutdown()

    vote = await _row(runtime, ids["vote"])
    assert vote["user_id"] == user
    assert vote["event_type"] == "vote"
    assert vote["properties"]["show_id"] == 5
    assert abs(vote["created_at"] - when) < timedelta(seconds=1)
    assert vote["source"] == "posthog"
    pageview = await _row(runtime, ids["anon"])
    assert pageview["event_type"] == "$pageview"
    assert pageview["page_url"] == "https://mysetlist.app/a/1"
    assert pageview["session_id"] == "ph-s1"
    assert pageview["user_id"] == user  # linked by $identify
    assert (await _row(runtime, ids["identify"]))["anonymous_id"] == anon
    # alias: the other device's earlier events become the user's
    alias = await _row(runtime, ids["alias"])
    assert (alias["event_type"], alias["user_id"], alias["anonymous_id"]) == (
        "$create_alias",
        user,
        other_device,
    )
    assert (await _row(runtime, ids["device"]))["user_id"] == user


async def test_posthog_gzip_js_query_and_single_event_endpoint(
    api_url: str, runtime: Runtime
) -> None:
    mid = str(uuid.uuid4())
    body = orjson.dumps({"api_key": KEY, "batch": [
        {"event": "search", "distinct_id": "d-1", "uuid": mid, "properties": {"q": "x"}},
    ]})  # fmt: skip
    single = str(uuid.uuid4())
    browser_id, browser_event = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/batch/?compression=gzip-js", content=gzip.compress(body))
        assert r.status_code == 200, r.text
        # posthog-js: an anonymous visitor's uuid distinct_id is not a platform user id
        r = await c.post("/e/", json={"api_key": KEY, "event": "$pageview", "uuid": browser_event,
                                      "distinct_id": browser_id,
                                      "properties": {"$is_identified": False}})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/i/v0/e/", json={"api_key": KEY, "event": "follow",
                                           "distinct_id": "d-2", "uuid": single})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/i/v0/e/", json={"api_key": "wrong", "event": "follow",
                                           "distinct_id": "d-2"})  # fmt: skip
        assert r.status_code == 401
    assert (await _row(runtime, mid))["properties"] == {"q": "x"}
    assert (await _row(runtime, single))["event_type"] == "follow"
    browser = await _row(runtime, browser_event)
    assert (browser["user_id"], browser["anonymous_id"]) == (None, browser_id)


async def test_segment_write_key_and_size_limits(api_url: str, runtime: Runtime) -> None:
    marker = "seg-" + uuid.uuid4().hex

    def msg(**kw: Any) -> dict[str, Any]:
        return {"type": "track", "event": "search", "anonymousId": marker, **kw}

    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/v1/batch", json={"batch": [msg()]}, headers=_basic("nope"))
        assert r.status_code == 401
        r = await c.post("/v1/batch", json={"batch": [msg()]})
        assert r.status_code == 401
        # writeKey in the body works too
        r = await c.post("/v1/track", json={**msg(), "writeKey": KEY})
        assert r.status_code == 200, r.text
        # the single-call endpoints take the call type from the path
        page_id, ident_id = uuid.uuid4().hex, uuid.uuid4().hex
        r = await c.post("/v1/page", headers=_basic(KEY), json={
            "anonymousId": marker + "-p", "name": "Home", "messageId": page_id,
            "context": {"page": {"url": "https://mysetlist.app/"}},
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/v1/identify", headers=_basic(KEY), json={
            "userId": str(uuid.uuid4()), "anonymousId": marker + "-p", "messageId": ident_id,
            "traits": {"name": "Kim"},
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/v1/unknown", headers=_basic(KEY), json=msg())
        assert r.status_code == 404
        # one event over 32 KB
        big = msg(properties={"x": "y" * 33_000})
        r = await c.post("/v1/batch", json={"batch": [msg(), big]}, headers=_basic(KEY))
        assert r.status_code == 400
        assert r.json()["errors"][0]["index"] == 1
        # a batch over 500 KB (each event under 32 KB)
        many = [msg(properties={"x": "y" * 20_000}) for _ in range(30)]
        r = await c.post("/v1/batch", json={"batch": many}, headers=_basic(KEY))
        assert r.status_code == 400
        assert "500" in r.json()["detail"] or "512000" in r.json()["detail"]
        # invalid message in a batch: per-index error, nothing written
        r = await c.post("/v1/batch", json={"batch": [msg(), {"type": "track"}]},
                         headers=_basic(KEY))  # fmt: skip
        assert r.status_code == 400
        assert {e["index"] for e in r.json()["errors"]} == {1}
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 1
    page = await _row(runtime, page_id)
    assert (page["event_type"], page["page_url"]) == ("page_view", "https://mysetlist.app/")
    assert page["properties"]["name"] == "Home"
    assert (await _row(runtime, ident_id))["event_type"] == "identify"


async def test_keys_cli_create_list_revoke(
    api_url: str, runtime: Runtime, database_url: str, redis_url: str, tmp_path: Any
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "MYSETLIST_DATA_DIR": str(tmp_path)}  # fmt: skip

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mysetlist", "keys", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    created = cli("create", "--name", "ios-app")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("msk_")
    listed = cli("list")
    assert "ios-app" in listed.stdout
    assert key not in listed.stdout  # only a prefix is shown, only a hash is stored
    marker = "k-" + uuid.uuid4().hex
    payload = {"batch": [{"type": "track", "event": "search", "anonymousId": marker}]}
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post("/v1/batch", json=payload, headers=_basic(key))
        assert r.status_code == 200, r.text
        revoked = cli("revoke", key[:12])
        assert revoked.returncode == 0, revoked.stderr
        r = await c.post("/v1/batch", json=payload, headers=_basic(key))
        assert r.status_code == 401
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 1
    stored = await runtime.db.fetch_all("SELECT key_sha256 FROM analytics.write_keys")
    assert all(key.encode() not in bytes(r["key_sha256"]) for r in stored)


async def test_a_senders_clock_error_is_removed_from_event_times(
    api_url: str, runtime: Runtime
) -> None:
    """A device whose clock runs 2 hours ahead stamps events and `sentAt`/`sent_at` alike;
    what lands is the event's time on our clock (as Segment and PostHog compute it)."""
    skew = timedelta(hours=2)
    seg, seg_no_sent_at, ph, ph_ignored, ph_offset = (str(uuid.uuid4()) for _ in range(5))
    async with httpx.AsyncClient(base_url=api_url) as c:
        device_now = datetime.now(UTC) + skew
        happened = device_now - timedelta(minutes=10)  # ten minutes before sending
        r = await c.post("/v1/batch", headers=_basic(KEY), json={
            "sentAt": device_now.isoformat(),
            "batch": [{"type": "track", "event": "search", "anonymousId": "skew",
                       "messageId": seg, "timestamp": happened.isoformat()}],
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/v1/track", headers=_basic(KEY), json={
            "event": "search", "anonymousId": "skew", "messageId": seg_no_sent_at,
            "timestamp": happened.isoformat(),
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = await c.post("/batch/", json={
            "api_key": KEY, "sent_at": device_now.isoformat(),
            "batch": [
                {"event": "search", "distinct_id": "skew", "uuid": ph,
                 "timestamp": happened.isoformat()},
                {"event": "search", "distinct_id": "skew", "uuid": ph_ignored,
                 "timestamp": happened.isoformat(), "properties": {"$ignore_sent_at": True}},
                {"event": "search", "distinct_id": "skew", "uuid": ph_offset, "offset": 600_000},
            ],
        })  # fmt: skip
        assert r.status_code == 200, r.text
        received = datetime.now(UTC)
        bad = await c.post("/v1/batch", headers=_basic(KEY), json={
            "sentAt": "yesterday-ish",
            "batch": [{"type": "track", "event": "search", "anonymousId": "skew"}],
        })  # fmt: skip
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "sentAt"

    def near(at: datetime, expected: datetime) -> bool:
        return abs(at - expected) < timedelta(seconds=30)

    true_time = received - timedelta(minutes=10)
    assert near((await _row(runtime, seg))["created_at"], true_time)
    assert near((await _row(runtime, ph))["created_at"], true_time)
    assert near((await _row(runtime, ph_offset))["created_at"], true_time)
    # no send time (or told to ignore it): the timestamp is taken as given
    assert near((await _row(runtime, seg_no_sent_at))["created_at"], true_time + skew)
    assert near((await _row(runtime, ph_ignored))["created_at"], true_time + skew)
