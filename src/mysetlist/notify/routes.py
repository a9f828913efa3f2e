"""HTTP routes of the notify capability: preferences, send and its history, templates
(operators), one-click unsubscribe (RFC 8058) and open/click tracking."""

from __future__ import annotations

import html
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mysetlist.core.audit import audit_request
from mysetlist.core.auth import CurrentUser, Operator
from mysetlist.core.db import fetch_one_in, read_sql
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import Runtime, RuntimeDep
from mysetlist.core.time_zones import time_zones_loaded
from mysetlist.notify import (
    inbox_routes,
    preference_service,
    push_routes,
    sending,
    template_store,
    templates,
    webhook_routes,
)
from mysetlist.notify.api_models import (
    Category,
    PreferencesRead,
    PreferencesUpdate,
    SendAccepted,
    SendHistory,
    TemplateList,
    TemplatePreview,
    TemplateRead,
    TemplateSaved,
)
from mysetlist.notify.catalog import PRODUCT_CATEGORIES
from mysetlist.notify.config import NotifySettings, load_notify_settings
from mysetlist.notify.signed_links import SignedLinks
from mysetlist.notify.storable import StorableJson, StorableText

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)
BIGINT_MAX = 2**63 - 1  # ids are bigint: a larger one is a 422, not a database error
_PACKAGE = "mysetlist.notify"
# A transparent 1x1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@cache
def _settings() -> NotifySettings:
    return load_notify_settings()


def _links(runtime: Runtime) -> SignedLinks:
    return SignedLinks(runtime.settings.effective_encryption_key)


# -- preferences -------------------------------------------------------------------------


@router.get("/api/notifications/preferences")
async def get_preferences(runtime: RuntimeDep, claims: CurrentUser) -> PreferencesRead:
    """The caller's category x channel matrix, digest frequencies, quiet hours and mute."""
    return await preference_service.get(runtime.db, _settings(), claims)


# The zone in the body is checked against PostgreSQL's list too: loaded before the body.
@router.put("/api/notifications/preferences", dependencies=[Depends(time_zones_loaded)])
async def put_preferences(
    request: Request, runtime: RuntimeDep, claims: CurrentUser, body: PreferencesUpdate
) -> PreferencesRead:
    """Change the fields given; a 422 names each bad field and changes nothing."""
    result = await preference_service.put(runtime.db, _settings(), claims, body)
    await audit_request(
        request, "notify.preferences_change", actor=claims, target=("user", claims.user_id)
    )
    return result


# -- send --------------------------------------------------------------------------------


@router.post(
    "/api/notifications/send",
    status_code=202,
    responses={202: {"headers": {"Idempotent-Replayed": {
        "description": "true: a repeat of an earlier Idempotency-Key, answered as the first",
        "schema": {"type": "string", "enum": ["true"]},
    }}}},
)  # fmt: skip
async def send_notification(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    claims: Operator,
    body: sending.SendRequest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> SendAccepted:
    """Service role and operators: notify a user, a list or a segment. 202 once committed;
    a repeat of an Idempotency-Key answers the first result and sends nothing."""
    result, replayed = await sending.send(
        runtime.db, _settings(), claims, body, idempotency_key=idempotency_key
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        await audit_request(
            request, "notify.operator_send", actor=claims,
            target=("send_request", result.get("requestId")), details={"type": body.type},
        )  # fmt: skip
    return SendAccepted.model_validate(result)


@router.get("/api/notifications/send")
async def send_history(
    runtime: RuntimeDep,
    claims: Operator,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    request_id: Annotated[int | None, Query(alias="requestId", ge=1, le=BIGINT_MAX)] = None,
) -> SendHistory:
    """Send requests, newest first, with per-channel delivery status counts."""
    rows = await sending.history(runtime.db, limit=limit, before=before, request_id=request_id)
    return SendHistory.model_validate({"requests": rows})


# -- templates (operators) -----------------------------------------------------------------


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=sending.TEMPLATE_NAME)
    locale: str = Field(default="en", pattern=sending.LOCALE)
    category: Category
    subject: StorableText = Field(min_length=1, max_length=500)
    html: StorableText = Field(min_length=1, max_length=200_000)
    text: StorableText | None = Field(default=None, max_length=200_000)
    variables: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]] = Field(
        default_factory=list, max_length=100
    )


class TemplatePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, pattern=sending.TEMPLATE_NAME)
    locale: str = Field(default="en", pattern=sending.LOCALE)
    template: TemplateCreate | None = None  # an unsaved draft
    variables: StorableJson = Field(default_factory=dict)


@router.get("/api/notifications/templates")
async def list_templates(runtime: RuntimeDep, claims: Operator) -> TemplateList:
    """The newest version of each (name, locale), and the shipped ones never saved over."""
    return TemplateList.model_validate({"templates": await template_store.list_all(runtime.db)})


@router.get("/api/notifications/templates/{name}")
async def get_template(
    runtime: RuntimeDep,
    claims: Operator,
    name: Annotated[str, Path(pattern=sending.TEMPLATE_NAME)],
    locale: Annotated[str, Query(pattern=sending.LOCALE)] = "en",
) -> TemplateRead:
    async with runtime.db.transaction() as conn:
        source = await template_store.latest(conn, name, locale)
    return TemplateRead.model_validate({
        "name": source.name, "locale": source.locale, "version": source.version,
        "category": source.category, "subject": source.subject, "html": source.html,
        "text": source.text, "variables": list(source.variables),
    })  # fmt: skip


@router.post("/api/notifications/templates", status_code=201)
async def save_template(
    request: Request, runtime: RuntimeDep, claims: Operator, body: TemplateCreate
) -> TemplateSaved:
    """A new version; a syntax error or an undeclared variable is a 422 with its line."""
    saved = await template_store.save(
        runtime.db, body.model_dump(mode="json"), created_by=claims.user_id
    )
    await audit_request(
        request, "notify.template_change", actor=claims, target=("template", body.name),
        details={"version": saved.get("version")},
    )  # fmt: skip
    return TemplateSaved.model_validate(saved)


@router.post("/api/notifications/templates/preview")
async def preview_template(
    runtime: RuntimeDep, claims: Operator, body: TemplatePreviewRequest
) -> TemplatePreview:
    """Render a saved template (`name`) or a draft (`template`) with sample variables."""
    if body.template is not None:
        draft = body.template
        try:
            templates.validate(draft.subject, draft.html, draft.text, draft.variables)
        except templates.TemplateProblem as exc:
            raise template_store.template_problem(exc) from None
        source = templates.TemplateSource(
            draft.name, draft.locale, 0, str(draft.category), draft.subject, draft.html, draft.text,
            tuple(draft.variables),
        )  # fmt: skip
    elif body.name is not None:
        async with runtime.db.transaction() as conn:
            source = await template_store.latest(conn, body.name, body.locale)
    else:
        raise Problem(422, "Unprocessable Content", "name: give name or template",
                      errors=[{"field": "name", "message": "give name or template"}])  # fmt: skip
    sample = {
        "user_name": "Sample Fan", "app_url": _settings().app_url, "title": "Sample title",
        "message": "Sample message", "unsubscribe_url": f"{_settings().public_url}/u/sample",
        **body.variables,
    }  # fmt: skip
    try:
        rendered = await templates.render_off_loop(source, sample)
    except templates.TemplateProblem as exc:
        raise template_store.template_problem(exc) from None
    return TemplatePreview(subject=rendered.subject, html=rendered.html, text=rendered.text)


# -- unsubscribe (RFC 8058) --------------------------------------------------------------


def _target(runtime: Runtime, token: str) -> Any:
    target = _links(runtime).read_unsubscribe(token)
    if target is None or target.category not in PRODUCT_CATEGORIES:
        raise Problem(404, "Not Found", "this unsubscribe link is not valid")
    return target


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(runtime: RuntimeDep, token: str) -> HTMLResponse:
    """The preferences page behind an unsubscribe link. It changes nothing by itself: link
    scanners prefetch GETs."""
    target = _target(runtime, token)
    prefs = await preference_service.of_user(runtime.db, _settings(), target.user_id)
    if prefs is None:
        raise Problem(404, "Not Found", "this unsubscribe link is not valid")
    boxes = "".join(
        f'<p><label><input type="checkbox" name="email" value="{c}"'
        f"{' checked' if prefs.allows(c, 'email') else ''}> {html.escape(c.replace('_', ' '))}"
        "</label></p>"
        for c in PRODUCT_CATEGORIES
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Email preferences</title>"
        "</head><body><h1>Email preferences</h1>"
        f"<form method='post'><input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        f"<button>Unsubscribe from {html.escape(target.category.replace('_', ' '))} emails</button>"
        "</form><h2>Or choose what you get</h2>"
        f"<form method='post'><input type='hidden' name='action' value='save'>{boxes}"
        "<button>Save</button></form></body></html>"
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.post("/u/{token}", include_in_schema=False)
async def unsubscribe_post(request: Request, runtime: RuntimeDep, token: str) -> Response:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click`, form-urlencoded or multipart, no
    cookies): that category's email is off; idempotent, 200, never a redirect."""
    target = _target(runtime, token)
    try:
        form = await request.form()
    except Exception:  # a body that is no form at all
        raise Problem(400, "Bad Request", "expected a form body") from None
    db = runtime.db
    gone = Problem(404, "Not Found", "this unsubscribe link is not valid")
    if form.get("List-Unsubscribe") == "One-Click":
        if not await preference_service.unsubscribe(db, target.user_id, target.category):
            raise gone  # the user was erased: nothing is left to unsubscribe
        return PlainTextResponse(
            f"You are unsubscribed from {target.category.replace('_', ' ')} emails.\n"
        )
    if form.get("action") == "save":
        chosen = {str(v) for v in form.getlist("email")} & set(PRODUCT_CATEGORIES)
        if not await preference_service.set_email_choices(db, target.user_id, chosen):
            raise gone
        return PlainTextResponse("Your email preferences are saved.\n")
    raise Problem(400, "Bad Request", "expected List-Unsubscribe=One-Click")


# -- open and click tracking -------------------------------------------------------------


@router.get(
    "/api/notifications/t/o/{token}.gif",
    summary="Email open pixel",
    response_class=Response,
    responses={200: {
        "description": "A transparent 1x1 GIF, whatever the token",
        "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
    }},
)  # fmt: skip
async def track_open(runtime: RuntimeDep, token: str) -> Response:
    delivery_id = _links(runtime).read_open(token)
    if delivery_id is not None:
        async with runtime.db.transaction() as conn:
            await conn.execute(
                read_sql(_PACKAGE, "tracking_open.sql"), {"delivery_id": delivery_id}
            )
    # The pixel either way: a broken image tells a forger nothing.
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get(
    "/api/notifications/t/c/{token}",
    summary="Tracked email link",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {
        "description": "To the destination stored for this delivery's link",
        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
    }},
)  # fmt: skip
async def track_click(runtime: RuntimeDep, token: str) -> Response:
    """Redirect to the destination stored for this delivery's link (never one in the URL)."""
    target = _links(runtime).read_click(token)
    if target is None:
        raise Problem(404, "Not Found", "unknown link")
    async with runtime.db.transaction() as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "tracking_click.sql"),
            {"delivery_id": target[0], "position": target[1]},
        )  # fmt: skip
    if row is None:
        raise Problem(404, "Not Found", "unknown link")
    return RedirectResponse(row["url"], status_code=302, headers={"Cache-Control": "no-store"})


# -- the parts in their own modules ------------------------------------------------------

router.include_router(webhook_routes.router)
router.include_router(inbox_routes.router)
router.include_router(push_routes.router)
