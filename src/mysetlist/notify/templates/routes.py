"""Operators' template API: list, read, save a new version, preview a saved one or a draft."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mysetlist.core.audit import audit_request
from mysetlist.core.auth import Operator
from mysetlist.core.errors import problem_responses
from mysetlist.core.runtime import RuntimeDep
from mysetlist.notify.api_models import Category
from mysetlist.notify.catalog import LOCALE, TEMPLATE_NAME
from mysetlist.notify.route_dependencies import NotifySettingsDep
from mysetlist.notify.storable import StorableJson, StorableText
from mysetlist.notify.templates import store
from mysetlist.notify.templates.api_models import (
    TemplateList,
    TemplatePreview,
    TemplateRead,
    TemplateSaved,
)
from mysetlist.notify.templates.rendering import TemplateSource

router = APIRouter(
    tags=["notifications"], responses=problem_responses(401, 403, 404, 409, 413, 429)
)


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=TEMPLATE_NAME)
    locale: str = Field(default="en", pattern=LOCALE)
    category: Category
    subject: StorableText = Field(min_length=1, max_length=500)
    html: StorableText = Field(min_length=1, max_length=200_000)
    text: StorableText | None = Field(default=None, max_length=200_000)
    variables: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]] = Field(
        default_factory=list, max_length=100
    )

    def source(self) -> TemplateSource:
        """As a template to render (version 0: not saved)."""
        return TemplateSource(
            self.name, self.locale, 0, str(self.category), self.subject, self.html, self.text,
            tuple(self.variables),
        )  # fmt: skip


class TemplatePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, pattern=TEMPLATE_NAME)
    locale: str = Field(default="en", pattern=LOCALE)
    template: TemplateCreate | None = None  # an unsaved draft
    variables: StorableJson = Field(default_factory=dict)


@router.get("/api/notifications/templates")
async def list_templates(runtime: RuntimeDep, claims: Operator) -> TemplateList:
    """The newest version of each (name, locale), and the shipped ones never saved over."""
    return TemplateList.model_validate({"templates": await store.list_all(runtime.db)})


@router.get("/api/notifications/templates/{name}")
async def get_template(
    runtime: RuntimeDep,
    claims: Operator,
    name: Annotated[str, Path(pattern=TEMPLATE_NAME)],
    locale: Annotated[str, Query(pattern=LOCALE)] = "en",
) -> TemplateRead:
    async with runtime.db.transaction() as conn:
        source = await store.latest(conn, name, locale)
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
    saved = await store.save(runtime.db, body.model_dump(mode="json"), created_by=claims.user_id)
    await audit_request(
        request, "notify.template_change", actor=claims, target=("template", body.name),
        details={"version": saved.get("version")},
    )  # fmt: skip
    return TemplateSaved.model_validate(saved)


@router.post("/api/notifications/templates/preview")
async def preview_template(
    runtime: RuntimeDep, settings: NotifySettingsDep, claims: Operator,
    body: TemplatePreviewRequest,
) -> TemplatePreview:  # fmt: skip
    """Render a saved template (`name`) or a draft (`template`) with sample variables."""
    rendered = await store.preview(
        runtime.db, name=body.name, locale=body.locale,
        draft=body.template.source() if body.template is not None else None,
        variables={"app_url": settings.app_url,
                   "unsubscribe_url": f"{settings.public_url}/u/sample", **body.variables},
    )  # fmt: skip
    return TemplatePreview(subject=rendered.subject, html=rendered.html, text=rendered.text)
