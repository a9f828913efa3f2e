"""Getting an operator into the dashboard, and knowing them on every request after.

- A one-time login link (`mysetlist dashboard-link`): a random token, stored as its
  SHA-256 with an expiry, redeemed once. Redeeming opens a session and redirects to
  `/dashboard`, so the token leaves the address bar and the history.
- A login form for a JWT the operator already has (checked by the API's verifier, then
  forgotten: only the session it opens lives on).
- Sessions are server-side: the cookie holds a random session id (no JWT, so it is no API
  token: as a Bearer it is a 401), `analytics.dashboard_sessions` only its SHA-256. A
  session ends at logout, at its expiry (DASHBOARD_SESSION_SECONDS, never later than the
  pasted JWT's), and when the operator's tokens are revoked (core/token_revocation.py).
  HttpOnly, SameSite=Strict.
- CSRF: state-changing calls authenticated by the cookie carry `X-CSRF-Token` (the page's
  token, an HMAC of the session id; checked by core.operator_auth, which asks
  `DashboardSession` for the session and its token); the logout form carries the same
  token, the login form an HMAC of a random pre-session cookie (double submit), so a
  foreign page can neither sign an operator out nor sign them in as someone else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from typing import Any

from fastapi import Request

from mysetlist.core.auth import AuthError, Claims
from mysetlist.core.config import Settings
from mysetlist.core.db import Database, connect_sync, fetch_one_in, read_sql
from mysetlist.core.runtime import Runtime

COOKIE = "mysetlist_dashboard"
LOGIN_COOKIE = "mysetlist_dashboard_login"  # the login form's CSRF nonce
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
LOGIN_FORM_SECONDS = 3600
_MAX_COOKIE = 128
_PACKAGE = "mysetlist.dashboard"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_login_link(
    database_url: str, operator_id: str, *, ttl_seconds: int, public_url: str
) -> str:
    """A one-time login URL for `operator_id` (the token itself is never stored)."""
    uuid.UUID(operator_id)
    token = secrets.token_urlsafe(32)
    with connect_sync(database_url, application_name="mysetlist-dashboard-link") as conn:
        conn.execute(read_sql(_PACKAGE, "link_prune.sql"))
        conn.execute(
            read_sql(_PACKAGE, "link_create.sql"),
            {"token_hash": _hash(token), "operator_id": operator_id, "ttl": ttl_seconds},
        )
    return f"{public_url.rstrip('/')}/dashboard/login/{token}"


async def redeem_login_link(db: Database, token: str) -> str | None:
    """The operator the link was made for, once; None for an unknown, used or expired one."""
    async with db.transaction() as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "link_redeem.sql"),
                                 {"token_hash": _hash(token)})  # fmt: skip
    return str(row["operator_id"]) if row else None


async def open_session(
    db: Database, operator_id: str, *, role: str, is_admin: bool, ttl_seconds: int
) -> str:
    """A new session for the operator; returns the session id (only its hash is stored)."""
    session = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        await conn.execute(read_sql(_PACKAGE, "session_prune.sql"))
        await conn.execute(read_sql(_PACKAGE, "session_create.sql"), {
            "session_hash": _hash(session), "operator_id": operator_id, "role": role,
            "is_admin": is_admin, "ttl": ttl_seconds,
        })  # fmt: skip
    return session


async def close_session(db: Database, session: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(read_sql(_PACKAGE, "session_revoke.sql"),
                           {"session_hash": _hash(session)})  # fmt: skip


def _csrf_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"dashboard-csrf:" + settings.effective_jwt_secret.encode()).digest()


def csrf_token(settings: Settings, session: str) -> str:
    """The CSRF token of the page rendered for `session` (its header and its logout form)."""
    return hmac.new(_csrf_key(settings), b"session:" + session.encode(), hashlib.sha256).hexdigest()


def login_csrf_token(settings: Settings, nonce: str) -> str:
    return hmac.new(_csrf_key(settings), b"login:" + nonce.encode(), hashlib.sha256).hexdigest()


def login_nonce(request: Request) -> str:
    """The login form's pre-session nonce: the browser's, or a new one."""
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if 16 <= len(nonce) <= _MAX_COOKIE:
        return nonce
    return secrets.token_urlsafe(24)


def login_csrf_ok(request: Request, settings: Settings, given: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not 16 <= len(nonce) <= _MAX_COOKIE:
        return False
    return hmac.compare_digest(given, login_csrf_token(settings, nonce))


async def cookie_claims(request: Request, runtime: Runtime) -> Claims | None:
    """The session cookie's operator; None without a cookie. An unknown, ended, expired or
    revoked session is a 401."""
    session = request.cookies.get(COOKIE)
    if not session:
        return None
    if len(session) > _MAX_COOKIE:
        raise AuthError("not a dashboard session")
    async with runtime.db.transaction() as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "session_lookup.sql"),
                                 {"session_hash": _hash(session)})  # fmt: skip
    if row is None:
        raise AuthError("the dashboard session has ended")
    operator_id, created_at = str(row["operator_id"]), float(row["created_at"])
    if runtime.revocations.is_revoked(operator_id, created_at):
        raise AuthError("the operator's sessions were revoked")
    raw: dict[str, Any] = {
        "sub": operator_id, "role": row["role"], "aud": runtime.settings.jwt_audience,
        "iat": int(created_at), "exp": int(row["expires_at"]),
        "app_metadata": {"admin": bool(row["is_admin"])},
    }  # fmt: skip
    return Claims(user_id=operator_id, role=row["role"], is_admin=bool(row["is_admin"]), raw=raw)


class DashboardSession:
    """The dashboard's cookie as an operator session (core.operator_auth.OperatorSession):
    the API's operator endpoints (the ETL's start and cancel) accept it from the page."""

    csrf_header = CSRF_HEADER

    async def claims(self, request: Request, runtime: Runtime) -> Claims | None:
        return await cookie_claims(request, runtime)

    def csrf_token(self, request: Request, runtime: Runtime) -> str:
        return csrf_token(runtime.settings, request.cookies[COOKIE])


def session_seconds_for(claims: Claims, limit: int) -> int:
    """A session opened with a JWT ends when the JWT would have, or at `limit`."""
    exp = int(claims.raw.get("exp", 0))
    return max(1, min(exp - int(time.time()), limit))


def cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    return {"key": COOKIE, "max_age": max_age, "httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https", "path": "/"}  # fmt: skip


def login_cookie_options(request: Request, nonce: str) -> dict[str, Any]:
    return {"key": LOGIN_COOKIE, "value": nonce, "max_age": LOGIN_FORM_SECONDS,
            "httponly": True, "samesite": "strict", "secure": request.url.scheme == "https",
            "path": "/dashboard"}  # fmt: skip
