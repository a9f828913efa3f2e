"""The dashboard's JSON contract: the document of every panel and one panel (its ETL
buttons answer with the warehouse's own contract). A panel's `data` has one shape per
panel (its query in `dashboard/sql/<name>.sql` builds it); the schema says it is JSON, not
which JSON."""

from __future__ import annotations

from datetime import datetime

# pydantic's JsonValue has the schema `{}` (any JSON): a recursive alias of our own would be
# exact, but openapi-typescript cannot emit a self-referencing type (its issue #1603).
from pydantic import BaseModel, Field, JsonValue

from mysetlist.dashboard.panels import DashboardRange, PanelSection


class PanelRead(BaseModel):
    title: str
    section: PanelSection
    unit: str
    data: JsonValue = Field(description="the panel's numbers (shape per panel)")
    empty: str | None = Field(default=None, description="what fills it, when it has nothing")
    error: str | None = Field(
        default=None, description="why its query failed (others still answer)"
    )


class DashboardDocument(BaseModel):
    range: DashboardRange
    timezone: str
    generated_at: datetime
    since: datetime
    cache_seconds: float
    query_ms: float
    panels: dict[str, PanelRead] = Field(description="panel name -> panel ('realtime' first)")
