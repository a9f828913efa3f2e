"""Getting an operator into the dashboard, and knowing them on every request after.

- A one-time login link (`mysetlist dashboard-link`): a random token, stored as its
  SHA-256 with an expiry, redeemed once. Redeeming sets the session cookie and redirects to
  `/dashboard`, so the token leaves the address bar and the history.
- A login form for a JWT the operator already has.
- The session cookie holds a JWT (minted for the link's operator, or the pasted one), so
  every request is checked by the same verifier as a Bearer token; HttpOnly, SameSite=Strict.
- State-changing calls authenticated by the cookie carry `X-CSRF-Token`, an HMAC of the
  cookie that the page was rendered with (a Bearer call needs none: no browser adds it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from mysetlist.core.auth import AuthError, Claims, TokenVerifier, mint_token, optional_claims
from mysetlist.core.config import Settings
from mysetlist.core.db import Database, fetch_one_in, read_sql
from mysetlist.core.errors import Problem

COOKIE = "mysetlist_dashboard"
CSRF_HEADER = "x-csrf-token"
_PACKAGE = "mysetlist.dashboard"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_login_link(
    database_url: str, operator_id: str, *, ttl_seconds: int, public_url: str
) -> str:
    """A one-time login URL for `operator_id` (the token itself is never stored)."""
    uuid.UUID(operator_id)
    token = secrets.token_urlsafe(32)
    with psycopg.connect(database_url) as conn:
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


def session_token_for(settings: Settings, operator_id: str, ttl_seconds: int) -> str:
    return mint_token(settings, operator_id, role="authenticated", admin=True,
                      ttl_seconds=ttl_seconds)  # fmt: skip


def csrf_token(settings: Settings, session: str) -> str:
    key = hashlib.sha256(b"dashboard-csrf:" + settings.effective_jwt_secret.encode()).digest()
    return hmac.new(key, session.encode(), hashlib.sha256).hexdigest()


def cookie_claims(request: Request) -> Claims | None:
    """The session cookie's claims; None without a cookie. A bad or expired cookie is a 401."""
    session = request.cookies.get(COOKIE)
    if not session:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(session)


async def dashboard_caller(
    request: Request, bearer: Annotated[Claims | None, Depends(optional_claims)]
) -> Claims:
    """An operator by Bearer token or by session cookie; 401 with neither, 403 if not one.
    A state-changing call by cookie must carry the page's CSRF token."""
    claims = bearer
    if claims is None:
        claims = cookie_claims(request)
        if claims is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            settings: Settings = request.app.state.runtime.settings
            expected = csrf_token(settings, request.cookies[COOKIE])
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), expected):
                raise Problem(403, "Forbidden", "missing or wrong CSRF token (X-CSRF-Token)")
    if claims is None:
        raise AuthError("a bearer token or a dashboard session is required")
    if not claims.is_operator:
        raise Problem(403, "Forbidden", "operators only")
    return claims


DashboardOperator = Annotated[Claims, Depends(dashboard_caller)]


def cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    return {"key": COOKIE, "max_age": max_age, "httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https", "path": "/"}  # fmt: skip
