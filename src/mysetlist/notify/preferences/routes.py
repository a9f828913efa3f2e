"""The caller's preferences (`GET/PUT /api/notifications/preferences`) and the pages behind
unsubscribe links (RFC 8058 one-click): the signed token proves the user, no session."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from mysetlist.core.audit import audit_request
from mysetlist.core.auth import CurrentUser
from mysetlist.core.errors import Problem, problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.core.time_zones import time_zones_loaded
from mysetlist.notify.catalog import PRODUCT_CATEGORIES
from mysetlist.notify.preferences import service
from mysetlist.notify.preferences.api_models import PreferencesRead, PreferencesUpdate
from mysetlist.notify.route_dependencies import NotifySettingsDep, SignedLinksDep
from mysetlist.notify.signed_links import UnsubscribeTarget

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)


def _invalid_link() -> Problem:
    return Problem(404, "Not Found", "this unsubscribe link is not valid")


@router.get("/api/notifications/preferences")
async def get_preferences(
    runtime: RuntimeDep, settings: NotifySettingsDep, claims: CurrentUser
) -> PreferencesRead:
    """The caller's category x channel matrix, digest frequencies, quiet hours and mute."""
    return await service.get(runtime.db, settings, claims)


# The zone in the body is checked against PostgreSQL's list too: loaded before the body.
@router.put("/api/notifications/preferences", dependencies=[Depends(time_zones_loaded)])
async def put_preferences(
    request: Request, runtime: RuntimeDep, settings: NotifySettingsDep, claims: CurrentUser,
    body: PreferencesUpdate,
) -> PreferencesRead:  # fmt: skip
    """Change the fields given; a 422 names each bad field and changes nothing."""
    result = await service.put(runtime.db, settings, claims, body)
    await audit_request(
        request, "notify.preferences_change", actor=claims, target=("user", claims.user_id)
    )
    return result


def _target(links: SignedLinksDep, token: str) -> UnsubscribeTarget:
    target = links.read_unsubscribe(token)
    if target is None or target.category not in PRODUCT_CATEGORIES:
        raise _invalid_link()
    return target


UnsubscribeTargetDep = Annotated[UnsubscribeTarget, Depends(_target)]


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(
    runtime: RuntimeDep, settings: NotifySettingsDep, target: UnsubscribeTargetDep
) -> HTMLResponse:
    """The preferences page behind an unsubscribe link. It changes nothing by itself: link
    scanners prefetch GETs."""
    prefs = await service.of_user(runtime.db, settings, target.user_id)
    if prefs is None:
        raise _invalid_link()
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
async def unsubscribe_post(
    request: Request, runtime: RuntimeDep, target: UnsubscribeTargetDep
) -> Response:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click`, form-urlencoded or multipart, no
    cookies): that category's email is off; idempotent, 200, never a redirect."""
    try:
        form = await request.form()
    except Exception:  # a body that is no form at all
        raise Problem(400, "Bad Request", "expected a form body") from None
    db = runtime.db
    if form.get("List-Unsubscribe") == "One-Click":
        if not await service.unsubscribe(db, target.user_id, target.category):
            raise _invalid_link()  # the user was erased: nothing is left to unsubscribe
        return PlainTextResponse(
            f"You are unsubscribed from {target.category.replace('_', ' ')} emails.\n"
        )
    if form.get("action") == "save":
        chosen = {str(v) for v in form.getlist("email")} & set(PRODUCT_CATEGORIES)
        if not await service.set_email_choices(db, target.user_id, chosen):
            raise _invalid_link()
        return PlainTextResponse("Your email preferences are saved.\n")
    raise Problem(400, "Bad Request", "expected List-Unsubscribe=One-Click")
