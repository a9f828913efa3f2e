"""The template API's contract (the bodies it takes are in `routes.py`, beside it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mysetlist.notify.api_models import STORED_CATEGORY


class TemplateSummary(BaseModel):
    name: str
    locale: str
    version: int = Field(description="0: the shipped template, never saved over")
    category: str = Field(description=STORED_CATEGORY)
    variables: list[str]
    created_at: datetime | None


class TemplateList(BaseModel):
    templates: list[TemplateSummary]


class TemplateRead(BaseModel):
    name: str
    locale: str
    version: int
    category: str = Field(description=STORED_CATEGORY)
    subject: str
    html: str
    text: str | None
    variables: list[str]


class TemplateSaved(BaseModel):
    id: int
    name: str
    locale: str
    version: int
    created_at: datetime


class TemplatePreview(BaseModel):
    subject: str
    html: str
    text: str
