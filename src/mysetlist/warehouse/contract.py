"""The HTTP contract of the ETL management API: a run as the operators see it, the
watermark, quality checks and the audit trail of a run."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mysetlist.warehouse.claiming import RunTrigger
from mysetlist.warehouse.pipeline import ChecksStatus
from mysetlist.warehouse.quality import CheckCategory
from mysetlist.warehouse.steps import RunMode

# Each closed set of values is declared once, where the code that sets it lives (a Literal
# is an enum in the schema); a run's status is set by the SQL of its life cycle.
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class RunRead(BaseModel):
    id: int
    trigger: RunTrigger
    mode: RunMode
    from_day: date | None
    to_day: date | None
    steps: list[str]
    status: RunStatus
    requested_by: uuid.UUID | None
    requested_by_role: str | None
    job_id: int | None
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    current_step: str | None
    days_total: int
    days_done: int
    rows_written: int
    step_timings: dict[str, dict[str, float]] = Field(description='{step: {"ms", "rows"}}')
    checks_status: ChecksStatus
    checks_failed: int
    maintenance: dict[str, Any] | None
    error: str | None
    cancel_requested_at: datetime | None
    cancelled_by: uuid.UUID | None


class QualityCheck(BaseModel):
    name: str
    category: CheckCategory
    passed: bool
    details: dict[str, Any]
    checked_at: datetime


class RunAuditEntry(BaseModel):
    action: str = Field(description="`trigger` or `cancel`")
    actor_id: uuid.UUID | None
    actor_role: str | None
    at: datetime
    details: dict[str, Any]


class RunDetail(RunRead):
    checks: list[QualityCheck]
    audit: list[RunAuditEntry]


class RunChange(BaseModel):
    """The answer to starting or cancelling a run."""

    run_id: int
    status: RunStatus
    run: RunRead


class Watermark(BaseModel):
    name: str
    position: datetime | None = Field(description="the last received_at processed")
    last_full_day: date | None
    run_id: int | None
    updated_at: datetime


class EtlStatus(BaseModel):
    active: RunRead | None
    runs: list[RunRead] = Field(description="the latest runs, newest first")
    watermark: Watermark | None
    steps: list[str] = Field(description="every step a run may name, in order")
