"""POST/GET /api/analytics/events against the real API, database and Redis."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import httpx
import orjson
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.platform import service as platform
from tests.tracking.conftest import count_events

pytestmark = pytest.mark.db

EVENTS = "/api/analytics/events"


def _ev(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_type": "page_view", "session_id": "s-" + uuid.uuid4().hex}
    base.update(kw)
    return base


async def _user(runtime: Runtime, name: str = "Fan") -> str:
    async with runtime.db.transaction() as conn:
        return await platform.create_user(conn, runtime.cipher, display_name=name)


async def test_ack_means_committed_with_user_from_token(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    uid = await _user(runtime)
    mid = uuid.uuid4().hex
    body = _ev(
        event_type="vote",
        message_id=mid,
        page_url="https://x/shows/7",
        event_data={"show_id": 7, "song_id": 3},
        timestamp="2026-01-02T03:04:05Z",
    )
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, json=body, headers={"Authorization": f"Bearer {token_for(uid)}"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1}
    # No waiting: a 202 means the row is already committed.
    rows = await runtime.db.fetch_all(
        "SELECT user_id::text, event_type, page_url, properties, created_at, source"
        " FROM analytics.user_events WHERE message_id = %s",
        (mid,),
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["user_id"] == uid
    assert row["event_type"] == "vote"
    assert row["page_url"] == "https://x/shows/7"
    assert row["properties"] == {"show_id": 7, "song_id": 3}
    assert row["created_at"].isoformat() == "2026-01-02T03:04:05+00:00"
    assert row["source"] == "api"


async def test_repeated_message_id_is_stored_once(api_url: str, runtime: Runtime) -> None:
    mid = "dup-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=api_url) as c:
        for _ in range(3):
            r = await c.post(EVENTS, json=_ev(message_id=mid, anonymous_id="a1"))
            assert r.status_code == 202
        # and twice inside one batch
        r = await c.post(EVENTS, json={"events": [_ev(message_id=mid, anonymous_id="a1")] * 2})
        assert r.status_code == 202
        # a big batch (staged with COPY rather than one INSERT) dedups the same way
        big = [_ev(message_id=f"{mid}-{i}", anonymous_id="a1") for i in range(200)]
        for _ in range(2):
            r = await c.post(
                EVENTS, json={"events": [*big, _ev(message_id=mid, anonymous_id="a1")]}
            )
            assert r.status_code == 202
    assert await count_events(runtime, "message_id = %s", (mid,)) == 1
    assert await count_events(runtime, "message_id LIKE %s", (f"{mid}-%",)) == 200


async def test_batch_is_all_or_nothing_with_errors_per_index(
    api_url: str, runtime: Runtime
) -> None:
    marker = uuid.uuid4().hex
    events = [_ev(anonymous_id=marker) for _ in range(5)]
    events[1] = {**events[1], "event_type": ""}
    events[3] = {**events[3], "event_data": "not an object"}
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, json={"events": events})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    by_index = {(e["index"], e["field"]) for e in problem["errors"]}
    assert by_index == {(1, "event_type"), (3, "event_data")}
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0

    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, json={"events": [_ev(anonymous_id=marker) for _ in range(5)]})
    assert r.status_code == 202
    assert r.json() == {"accepted": 5}
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 5


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("malformed_json", 400, None),
        ("wrong_type", 422, "timestamp"),
        ("unknown_field", 422, "colour"),
        ("forged_user_id", 403, "user_id"),
        ("forged_in_batch", 403, "user_id"),
        ("over_limit_batch", 413, "events"),
        ("oversized_body", 413, None),
        ("oversized_event", 422, "event"),
        ("not_an_object", 422, "body"),
        ("anonymous_without_ids", 422, "anonymous_id"),
        ("nul_character", 400, "body"),
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_writes_nothing(
    api_url: str, runtime: Runtime, settings: Any, case: str, status: int, field: str | None
) -> None:
    marker = uuid.uuid4().hex
    good = _ev(anonymous_id=marker)
    content: bytes
    if case == "malformed_json":
        content = b'{"event_type": "page_view", "anonymous_id": "' + marker.encode() + b'"'
    elif case == "wrong_type":
        content = orjson.dumps({**good, "timestamp": "yesterday-ish"})
    elif case == "unknown_field":
        content = orjson.dumps({**good, "colour": "red"})
    elif case == "forged_user_id":
        content = orjson.dumps({**good, "user_id": str(uuid.uuid4())})
    elif case == "forged_in_batch":
        content = orjson.dumps({"events": [good, {**good, "user_id": str(uuid.uuid4())}]})
    elif case == "over_limit_batch":
        content = orjson.dumps({"events": [good] * (settings.analytics_batch_size + 1)})
    elif case == "oversized_body":
        content = orjson.dumps({**good, "event_data": {"x": "y" * (settings.max_body_bytes + 10)}})
    elif case == "oversized_event":
        content = orjson.dumps({"events": [good, {**good, "event_data": {"x": "y" * 40_000}}]})
    elif case == "not_an_object":
        content = orjson.dumps([good])
    elif case == "anonymous_without_ids":
        content = orjson.dumps({"events": [good, {"event_type": "search", "page_url": marker}]})
    else:
        content = orjson.dumps({**good, "event_data": {"q": "a\u0000b"}})
    before = await count_events(runtime)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(EVENTS, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 0
    assert await count_events(runtime) == before


async def test_gzip_body_is_accepted(api_url: str, runtime: Runtime) -> None:
    marker = uuid.uuid4().hex
    raw = orjson.dumps({"events": [_ev(anonymous_id=marker) for _ in range(3)]})
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.post(
            EVENTS, content=gzip.compress(raw),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )  # fmt: skip
        assert r.status_code == 202, r.text
        bad = await c.post(EVENTS, content=b"not gzip at all", headers={"content-encoding": "gzip"})
    assert bad.status_code == 400
    assert await count_events(runtime, "anonymous_id = %s", (marker,)) == 3


async def test_anonymous_session_is_linked_when_it_authenticates(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    uid = await _user(runtime, "Later")
    other_session = "sess-" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=api_url) as c:
        # server-signed ids: carrying them proves they are this visitor's (see
        # test_identity_proof.py for ids that prove nothing)
        ids = (await c.post("/api/analytics/anonymous-id")).json()
        anon, session = ids["anonymous_id"], ids["session_id"]
        r = await c.post(EVENTS, json={"events": [
            _ev(event_type="artist_view", anonymous_id=anon, session_id=session),
            _ev(event_type="search", session_id=session),
            _ev(event_type="show_view", anonymous_id=anon, session_id=other_session),
            _ev(event_type="page_view", anonymous_id="someone-else", session_id=other_session),
        ]})  # fmt: skip
        assert r.status_code == 202
        assert await count_events(runtime, "user_id = %s", (uid,)) == 0
        auth = {"Authorization": f"Bearer {token_for(uid)}"}
        r = await c.post(EVENTS, json=_ev(event_type="follow", anonymous_id=anon,
                                          session_id=session), headers=auth)  # fmt: skip
        assert r.status_code == 202
        # by anonymous id: 2 earlier events; by session: the search; plus the follow itself
        assert await count_events(runtime, "user_id = %s", (uid,)) == 4
        assert await count_events(runtime, "anonymous_id = 'someone-else' AND user_id = %s",
                                  (uid,)) == 0  # fmt: skip
        # a later anonymous event from the linked device gets the user at insert
        r = await c.post(EVENTS, json=_ev(event_type="share", anonymous_id=anon, session_id="n"))
        assert r.status_code == 202
    assert await count_events(runtime, "user_id = %s AND event_type = 'share'", (uid,)) == 1


async def test_get_events_is_own_paged_filtered_and_under_rls(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    a, b = await _user(runtime, "A"), await _user(runtime, "B")
    admin = await _user(runtime, "Op")
    async with httpx.AsyncClient(base_url=api_url) as c:
        for uid, n in ((a, 7), (b, 3)):
            events = [
                _ev(event_type="vote" if i % 2 else "page_view",
                    timestamp=f"2026-03-01T10:{i:02d}:00Z")
                for i in range(n)
            ]  # fmt: skip
            r = await c.post(EVENTS, json={"events": events},
                             headers={"Authorization": f"Bearer {token_for(uid)}"})  # fmt: skip
            assert r.status_code == 202
        ha = {"Authorization": f"Bearer {token_for(a)}"}
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            r = await c.get(EVENTS, params=params, headers=ha)
            assert r.status_code == 200, r.text
            page = r.json()
            assert all(e["user_id"] == a for e in page["events"])
            seen += [e["created_at"] for e in page["events"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == 7
        assert seen == sorted(seen, reverse=True)
        r = await c.get(EVENTS, params={"event_type": "vote"}, headers=ha)
        assert [e["event_type"] for e in r.json()["events"]] == ["vote"] * 3
        r = await c.get(EVENTS, params={"since": "2026-03-01T10:05:00Z",
                                        "until": "2026-03-01T10:06:30Z"}, headers=ha)  # fmt: skip
        assert len(r.json()["events"]) == 2
        # A cannot read B's events
        r = await c.get(EVENTS, params={"user_id": b}, headers=ha)
        assert r.status_code == 403
        # an operator can
        r = await c.get(
            EVENTS,
            params={"user_id": b},
            headers={"Authorization": f"Bearer {token_for(admin, admin=True)}"},
        )
        assert r.status_code == 200
        assert len(r.json()["events"]) == 3
        r = await c.get(EVENTS)
        assert r.status_code == 401
    # The database enforces it too: as A, B's rows are invisible even when asked for.
    async with runtime.db.as_user(a) as conn:
        cur = await conn.execute("SELECT count(*) FROM analytics.user_events WHERE user_id = %s",
                                 (b,))  # fmt: skip
        row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0
