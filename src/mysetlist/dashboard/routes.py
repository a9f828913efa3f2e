"""HTTP of the dashboard: the page, its login, its static files, the JSON API and SSE.

- `GET /api/analytics/dashboard?range=24h|7d|30d|90d&tz=Area/City`: every panel, one JSON
  document, cached in Redis (`DASHBOARD_CACHE_SECONDS`). Operators only: 401 without a token
  (or session), 403 for anyone else. `…/panels/{name}` one panel, uncached (live refresh);
  `…/stream` Server-Sent Events with the live panels every `DASHBOARD_LIVE_INTERVAL_SECONDS`.
- The page's Run ETL and Cancel buttons call the warehouse's own `POST` / `DELETE
  /api/analytics/etl`, which admit the page's session (`operator_sessions` below, read by
  core.operator_auth; by cookie they need the page's CSRF token).
- `GET /dashboard` the page (or the login form), `GET /dashboard/login/{token}` redeems a
  one-time link, `POST /dashboard/login` takes a pasted JWT, `POST /dashboard/logout` ends
  the session (both forms carry a CSRF token; sessions: dashboard/sessions.py).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from mysetlist.core.auth import AuthError, TokenVerifier
from mysetlist.core.auth_failures import client_address
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.operator_auth import OperatorDep, OperatorSession
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.core.time_zones import time_zones_loaded
from mysetlist.dashboard import panels, sessions
from mysetlist.dashboard.api_models import DashboardDocument, PanelRead
from mysetlist.dashboard.config import dashboard_settings
from mysetlist.dashboard.errors import InvalidWindow

# Time zones are checked in panels.window against both Python and PostgreSQL (issue 15).
router = APIRouter(
    tags=["dashboard"],
    dependencies=[Depends(time_zones_loaded)],
    responses=problem_responses(401, 403, 404, 413, 429),
)

# Only our own scripts; ECharts writes inline styles into its tooltips, hence style-src.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")  # fmt: skip
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "echarts/echarts.min.js": "text/javascript; charset=utf-8",
    "echarts/LICENSE": "text/plain; charset=utf-8",
    "echarts/NOTICE": "text/plain; charset=utf-8",
}
# The page's session, offered to core.operator_auth (api.create_app collects it): the
# API's operator endpoints, the ETL's start and cancel among them, accept it.
operator_sessions: tuple[OperatorSession, ...] = (sessions.DashboardSession(),)
_templates = Environment(
    loader=PackageLoader("mysetlist.dashboard", "templates"), autoescape=select_autoescape()
)

# Checked by panels.window (the page answers a bad one with its own HTML message).
Range = Annotated[
    str, Query(description="24h, 7d, 30d or 90d", json_schema_extra={"enum": list(panels.RANGES)})
]
_SSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-Sent Events: `event: panel`, `data:` {name, panel} (a PanelRead)"
    " for each live panel, every DASHBOARD_LIVE_INTERVAL_SECONDS",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}}  # fmt: skip
TimeZone = Annotated[str, Query(max_length=64, description="IANA time zone of the heatmap")]


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


# The document goes out as the bytes cached in Redis: declared, not re-validated.
@router.get(
    "/api/analytics/dashboard",
    summary="Every dashboard panel (operators)",
    response_model=DashboardDocument,
)
async def dashboard(
    runtime: RuntimeDep, claims: OperatorDep, range: Range = "7d", tz: TimeZone = "UTC"
) -> Response:
    return _json(await _document(runtime, panels.window(range, tz)))


async def _document(runtime: Runtime, win: panels.Window) -> bytes:
    # Every panel reads the replica when there is one and it is within its lag bound
    # (`Database.reader`): aggregates a few seconds old, no operator's own write among them.
    settings = dashboard_settings()
    return await panels.dashboard_document(
        await runtime.db.reader(), runtime.redis, runtime.settings.redis_key_prefix, win,
        timeout_ms=settings.panel_timeout_ms, cache_seconds=settings.cache_seconds,
    )  # fmt: skip


@router.get(
    "/api/analytics/dashboard/panels/{name}",
    summary="One panel, uncached",
    response_model=PanelRead,
)
async def one_panel(
    runtime: RuntimeDep,
    claims: OperatorDep,
    name: Annotated[
        str, Path(json_schema_extra={"enum": ["realtime", *panels.BY_NAME]})
    ],
    range: Range = "7d",
    tz: TimeZone = "UTC",
) -> Response:  # fmt: skip
    settings = dashboard_settings()
    panel = await panels.one_panel(
        await runtime.db.reader(), runtime.redis, runtime.settings.redis_key_prefix, name,
        panels.window(range, tz), settings.panel_timeout_ms,
    )  # fmt: skip
    return _json(orjson.dumps(panel))


@router.get(
    "/api/analytics/dashboard/stream",
    summary="Live panels as Server-Sent Events",
    response_class=StreamingResponse,
    responses=_SSE,
)
async def stream(
    request: Request, runtime: RuntimeDep, claims: OperatorDep, range: Range = "7d",
    tz: TimeZone = "UTC",
) -> StreamingResponse:  # fmt: skip
    win = panels.window(range, tz)
    settings = dashboard_settings()
    by_cookie = not request.headers.get("authorization")

    async def session_lives() -> bool:
        if not by_cookie:
            return True
        try:
            return await sessions.cookie_claims(request, runtime) is not None
        except AuthError:
            return False

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n\n"
        # A signed-out or revoked session stops getting data (checked every round).
        while not await request.is_disconnected() and await session_lives():
            now_win = panels.window(win.range, win.tz)
            for name in panels.LIVE_PANELS:
                panel = await panels.one_panel(
                    await runtime.db.reader(), runtime.redis, runtime.settings.redis_key_prefix,
                    name, now_win, settings.panel_timeout_ms,
                )  # fmt: skip
                data = orjson.dumps({"name": name, "panel": panel})
                yield b"event: panel\ndata: " + data + b"\n\n"
            await asyncio.sleep(settings.live_interval_seconds)

    return StreamingResponse(
        events(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip


def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _templates.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _login_form(
    request: Request, runtime: Runtime, status: int, message: str | None = None
) -> HTMLResponse:
    """The login form, with its CSRF token and the pre-session cookie it is checked against."""
    nonce = sessions.login_nonce(request)
    csrf = sessions.login_csrf_token(runtime.settings, nonce)
    response = _html("login.html", status, message=message, csrf=csrf)
    response.set_cookie(**sessions.login_cookie_options(request, nonce))
    return response


@router.get("/dashboard", include_in_schema=False)
async def page(
    request: Request, runtime: RuntimeDep, range: Range = "7d", tz: TimeZone = "UTC"
) -> HTMLResponse:
    try:
        claims = await sessions.cookie_claims(request, runtime)
    except AuthError as exc:
        return _login_form(
            request, runtime, 401, f"your session ended ({exc.detail}): sign in again"
        )
    if claims is None:
        return _login_form(request, runtime, 401)
    if not claims.is_operator:
        return _login_form(
            request, runtime, 403, "this account is not an operator: the dashboard is for operators"
        )
    try:
        win = panels.window(range, tz)
    except InvalidWindow as exc:
        return _html("message.html", 422, message=exc.detail)
    document = await _document(runtime, win)
    settings = runtime.settings
    return _html(
        "dashboard.html",
        range=win.range, ranges=list(panels.RANGES), tz=win.tz,
        # A JSON island (never executed) the page script reads. `<` only occurs inside JSON
        # strings, where \u003c means the same; so no `</script>` or `<!--` reaches the parser.
        document=document.decode().replace("<", "\\u003c"),
        csrf=sessions.csrf_token(settings, request.cookies[sessions.COOKIE]),  # header, logout
        sections=_sections(),
    )  # fmt: skip


def _sections() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, title in panels.SECTIONS.items():
        items = [{"name": p.name, "title": p.title, "unit": p.unit}
                 for p in panels.PANELS if p.section == key]  # fmt: skip
        if key == "realtime":
            items.insert(0, {"name": "realtime", "title": "Right now", "unit": ""})
        out.append({"key": key, "title": title, "panels": items})
    return out


@router.get("/dashboard/login/{token}", include_in_schema=False)
async def redeem_link(request: Request, runtime: RuntimeDep, token: str) -> Response:
    if len(token) > 128:
        return _login_form(request, runtime, 401, "this login link is not valid")
    db = runtime.db
    operator_id = await sessions.redeem_login_link(db, token)
    if operator_id is None:
        return _login_form(
            request, runtime, 401, "this login link was used already or has expired: "
            "run `mysetlist dashboard-link` for a new one",
        )  # fmt: skip
    seconds = dashboard_settings().session_seconds
    session = await sessions.open_session(
        db, operator_id, role="authenticated", is_admin=True, ttl_seconds=seconds
    )
    # 303 to a clean URL: the token does not stay in the address bar or the history.
    response = RedirectResponse("/dashboard", status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(value=session, **sessions.cookie_options(request, seconds))
    return response


@router.post("/dashboard/login", include_in_schema=False)
async def login_with_token(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str, Form(max_length=8192)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    if not sessions.login_csrf_ok(request, runtime.settings, csrf):
        return _login_form(
            request, runtime, 403, "the sign-in form expired or came from elsewhere: sign in again"
        )
    verifier: TokenVerifier = request.app.state.verifier
    client = client_address(request)
    runtime.auth_failures.raise_if_blocked(client)
    try:
        claims = verifier.verify(token.strip())
    except AuthError as exc:
        await runtime.auth_failures.failed(client)  # the per-client limit of core.auth
        return _login_form(
            request, runtime, 401, f"that token does not open the dashboard: {exc.detail}"
        )
    if not claims.is_operator:
        return _login_form(
            request, runtime, 403, "this account is not an operator: the dashboard is for operators"
        )
    seconds = sessions.session_seconds_for(claims, dashboard_settings().session_seconds)
    session = await sessions.open_session(
        runtime.db, claims.user_id, role=claims.role, is_admin=claims.is_admin,
        ttl_seconds=seconds,
    )  # fmt: skip
    response = RedirectResponse("/dashboard", status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(value=session, **sessions.cookie_options(request, seconds))
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/dashboard")
    return response


@router.post("/dashboard/logout", include_in_schema=False)
async def logout(
    request: Request, runtime: RuntimeDep, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    session = request.cookies.get(sessions.COOKIE)
    if session:
        expected = sessions.csrf_token(runtime.settings, session)
        if not hmac.compare_digest(csrf, expected):
            return _html("message.html", 403,
                         message="sign out from the dashboard's own Sign out button")  # fmt: skip
        await sessions.close_session(runtime.db, session)
    response = RedirectResponse("/dashboard", status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict")
    return response


@functools.cache
def _static_bytes(path: str) -> bytes:
    return resources.files("mysetlist.dashboard").joinpath("static", path).read_bytes()


@router.get("/dashboard/static/{path:path}", include_in_schema=False)
async def static(path: str) -> Response:
    media_type = STATIC_FILES.get(path)
    if media_type is None:
        raise Problem(404, "Not Found", f"no static file {path!r}")
    data = _static_bytes(path)
    return Response(data, media_type=media_type, headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff",
    })  # fmt: skip
