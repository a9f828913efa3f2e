"""Attack: the dashboard's cookie was a 12-hour admin JWT that still worked after logout, also
as a Bearer token for the whole API (issue 15, item 4). Sessions are server-side now: an
opaque id in the cookie, its hash in the database, ended by logout, expiry and revocation;
the login and logout forms carry CSRF tokens."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from mysetlist.dashboard.sessions import COOKIE, LOGIN_COOKIE, create_login_link

pytestmark = pytest.mark.db

DASHBOARD_API = "/api/analytics/dashboard/panels/etl_runs"


@pytest.fixture
def operator_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


def sign_in(client: httpx.Client, database_url: str, api_url: str, operator_id: str) -> str:
    link = create_login_link(database_url, operator_id, ttl_seconds=60, public_url=api_url)
    r = client.get(link)
    assert r.status_code == 303, r.text
    return client.cookies[COOKIE]


def form_csrf(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_the_cookie_is_an_opaque_session_and_no_api_token(
    client: httpx.Client, database_url: str, api_url: str, operator_id: str
) -> None:
    session = sign_in(client, database_url, api_url, operator_id)
    assert client.get(DASHBOARD_API).status_code == 200  # the session works by cookie
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(session)
    with httpx.Client(base_url=api_url, timeout=30) as stranger:
        for path in (DASHBOARD_API, "/api/me/follows", "/api/analytics/events"):
            r = stranger.get(path, headers={"Authorization": f"Bearer {session}"})
            assert r.status_code == 401, (path, r.text)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT session_hash, operator_id::text FROM analytics.dashboard_sessions"
            " WHERE operator_id = %s",
            (operator_id,),
        ).fetchall()
    assert rows == [(hashlib.sha256(session.encode()).digest(), operator_id)]  # only its hash


def test_logout_ends_the_session_and_needs_the_pages_csrf_token(
    client: httpx.Client, database_url: str, api_url: str, operator_id: str
) -> None:
    session = sign_in(client, database_url, api_url, operator_id)
    page = client.get("/dashboard")
    assert page.status_code == 200
    csrf = form_csrf(page.text.split('action="/dashboard/logout"', 1)[1])
    # A cross-site form cannot sign the operator out: no or a wrong token is refused.
    for data in ({}, {"csrf": "0" * 64}):
        assert client.post("/dashboard/logout", data=data).status_code == 403
    assert client.get(DASHBOARD_API).status_code == 200
    r = client.post("/dashboard/logout", data={"csrf": csrf})
    assert r.status_code == 303
    # The old cookie, replayed (a copy taken before logout), opens nothing.
    with httpx.Client(base_url=api_url, cookies={COOKIE: session}, timeout=30) as replay:
        assert replay.get(DASHBOARD_API).status_code == 401
        assert replay.get("/dashboard").status_code == 401  # the login form
        assert 'name="token"' in replay.get("/dashboard").text


def test_the_login_form_needs_its_csrf_token(
    client: httpx.Client, api_url: str, token_for: Any
) -> None:
    operator = token_for(uuid.uuid4(), admin=True)
    # Login CSRF: a foreign page posts a valid operator token without the form's token.
    r = client.post("/dashboard/login", data={"token": operator})
    assert r.status_code == 403
    assert COOKIE not in r.cookies
    form = client.get("/dashboard")
    csrf = form_csrf(form.text)
    # The token belongs to this browser's pre-session cookie: another browser's is refused.
    with httpx.Client(base_url=api_url, timeout=30) as other:
        other.get("/dashboard")
        r = other.post("/dashboard/login", data={"token": operator, "csrf": csrf})
        assert r.status_code == 403
        assert COOKIE not in r.cookies
    r = client.post("/dashboard/login", data={"token": operator, "csrf": csrf})
    assert r.status_code == 303
    assert r.cookies[COOKIE] != operator
    assert LOGIN_COOKIE in form.cookies


def test_expired_and_revoked_sessions_are_refused(
    client: httpx.Client, database_url: str, api_url: str, operator_id: str, token_for: Any
) -> None:
    sign_in(client, database_url, api_url, operator_id)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE analytics.dashboard_sessions SET expires_at = now() - interval '1 s'"
            " WHERE operator_id = %s",
            (operator_id,),
        )
    assert client.get(DASHBOARD_API).status_code == 401

    sign_in(client, database_url, api_url, operator_id)
    assert client.get(DASHBOARD_API).status_code == 200
    admin = {"Authorization": "Bearer " + token_for(uuid.uuid4(), admin=True)}
    r = client.post(f"/api/auth/users/{operator_id}/revoke-tokens", headers=admin)
    assert r.status_code == 200, r.text
    assert client.get(DASHBOARD_API).status_code == 401


def test_a_live_stream_stops_when_its_session_ends(
    client: httpx.Client, database_url: str, api_url: str, operator_id: str
) -> None:
    session = sign_in(client, database_url, api_url, operator_id)
    csrf = form_csrf(client.get("/dashboard").text.split('action="/dashboard/logout"', 1)[1])
    viewer = httpx.Client(base_url=api_url, cookies={COOKIE: session}, timeout=30)
    with viewer, viewer.stream("GET", "/api/analytics/dashboard/stream?range=24h") as stream:
        assert stream.status_code == 200
        chunks = stream.iter_bytes()
        assert next(chunks).startswith(b"retry:")
        assert client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 303
        # Rounds come every DASHBOARD_LIVE_INTERVAL_SECONDS; the next one sees the end.
        deadline = time.monotonic() + 20
        for _ in chunks:  # the loop ends when the server ends the stream
            assert time.monotonic() < deadline, "the stream went on after logout"
