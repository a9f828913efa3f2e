"""The HTTP contract of the ETL management API: a run as the operators see it, the
watermark, quality checks and the audit trail of a run."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class RunTrigger(StrEnum):
    schedule = "schedule"
    incremental = "incremental"
    api = "api"
    cli = "cli"


class RunMode(StrEnum):
    daily = "daily"
    range = "range"
    incremental = "incremental"


class ChecksStatus(StrEnum):
    not_run = "not_run"
    passed = "passed"
    failed = "failed"


class CheckCategory(StrEnum):
    schema = "schema"
    completeness = "completeness"
    consistency = "consistency"
    freshness = "freshness"


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
