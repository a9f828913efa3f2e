"""Who may operate the service: an operator by Bearer token, or by a browser session a
capability keeps (the dashboard's cookie), so one endpoint serves the API's callers and the
dashboard's buttons alike (issue 16 item 11: the ETL's start and cancel exist once).

Core does not know the dashboard: a capability offers its session kind as
`operator_sessions` in its `routes` module, `api.create_app` puts them all on
`app.state.operator_sessions`, and `OperatorDep` asks each. A state-changing call
authenticated by a session (an ambient cookie a foreign page could make the browser send)
must carry the session's CSRF token; a Bearer token is never ambient, so it needs none.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated, Protocol

from fastapi import Depends, Request

from mysetlist.core.auth import AuthError, Claims, OptionalUser
from mysetlist.core.db import unmark_caller_request
from mysetlist.core.errors import Problem
from mysetlist.core.runtime import Runtime, RuntimeDep

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class OperatorSession(Protocol):
    """A kind of browser session that can stand for an operator."""

    @property
    def csrf_header(self) -> str:
        """The request header that carries the session's CSRF token."""
        ...

    async def claims(self, request: Request, runtime: Runtime) -> Claims | None:
        """The session's caller; None when the request carries no such session. Raises
        `AuthError` (401) for an unknown, ended or revoked one."""
        ...

    def csrf_token(self, request: Request, runtime: Runtime) -> str:
        """The CSRF token the page of this request's session was given."""
        ...


def operator_sessions(request: Request) -> Sequence[OperatorSession]:
    sessions: Sequence[OperatorSession] = getattr(request.app.state, "operator_sessions", ())
    return sessions


async def session_claims(request: Request, runtime: Runtime) -> Claims | None:
    """The caller of the first session kind the request carries, CSRF checked on a
    state-changing method; None without any session."""
    for session in operator_sessions(request):
        claims = await session.claims(request, runtime)
        if claims is None:
            continue
        if request.method not in SAFE_METHODS:
            given = request.headers.get(session.csrf_header, "")
            if not hmac.compare_digest(given, session.csrf_token(request, runtime)):
                raise Problem(
                    403, "Forbidden", f"missing or wrong CSRF token ({session.csrf_header})"
                )
        return claims
    return None


async def operator_caller(request: Request, runtime: RuntimeDep, bearer: OptionalUser) -> Claims:
    """An operator by Bearer token or by session; 401 with neither, 403 if not one."""
    claims = bearer if bearer is not None else await session_claims(request, runtime)
    if claims is None:
        raise AuthError("a bearer token or an operator session is required")
    if not claims.is_operator:
        raise Problem(403, "Forbidden", "operators only")
    unmark_caller_request()  # operators only: their owner reads are what the route is for
    return claims


# How a route admits operators by token or session: `async def route(claims: OperatorDep)`.
OperatorDep = Annotated[Claims, Depends(operator_caller)]
