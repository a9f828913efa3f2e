"""What the parts of one executing ETL run share: its row, its day range and snapshot,
per-step timings, progress reporting and the cancel flag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import psycopg

from mysetlist.core.db import Row, fetch_one_in
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.errors import EtlCancelled
from mysetlist.warehouse.sql_files import query

Connection = psycopg.AsyncConnection[Any]
Progress = Callable[[str, int, int], None]  # (step, done, total)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


@dataclass
class StepTiming:
    ms: float = 0.0
    rows: int = 0
    retries: int = 0  # day transactions rolled back in this step and run again

    def as_json(self) -> dict[str, float]:
        out: dict[str, float] = {"ms": round(self.ms, 1), "rows": self.rows}
        if self.retries:
            out["retries"] = self.retries
        return out


@dataclass
class RunState:
    control: Connection  # holds the run lock; bookkeeping only
    row: Row  # the run's etl_runs row
    config: EtlConfig
    progress: Progress | None = None
    timings: dict[str, StepTiming] = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    days_done: int = 0
    rows_written: int = 0
    snapshot: datetime | None = None  # events received after this are left to the next run
    since: datetime | None = None  # incremental: events received after this
    voting_full: bool = False  # the voting rollup recomputes every user, show and artist
    # A first backfill (backfill.py): the day tables were empty, nothing to delete.
    fresh: bool = False

    @property
    def run_id(self) -> int:
        return int(self.row["id"])

    @property
    def mode(self) -> str:
        return str(self.row["mode"])

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    @property
    def steps(self) -> list[str]:
        return list(self.row["steps"])

    def day_range(self) -> tuple[date, date] | None:
        frm, to = self.row.get("from_day"), self.row.get("to_day")
        if frm is None or to is None:
            return None
        return frm, to

    def timing(self, step: str) -> StepTiming:
        return self.timings.setdefault(step, StepTiming())

    def timings_json(self) -> str:
        return orjson.dumps({k: v.as_json() for k, v in self.timings.items()}).decode()

    def tick(self, step: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(step, done, total)

    async def save_progress(self, current_step: str | None) -> None:
        await self.control.execute(
            query("run_save_progress"),
            {
                "current_step": current_step,
                "days_done": self.days_done,
                "rows_written": self.rows_written,
                "step_timings": self.timings_json(),
                "run_id": self.run_id,
            },
        )

    async def record_range(self, frm: date | None, to: date | None) -> None:
        self.row["from_day"], self.row["to_day"] = frm, to
        await self.control.execute(
            query("run_record_range"),
            {
                "from_day": frm,
                "to_day": to,
                "days_total": len(self.days),
                "snapshot": self.snapshot,
                "run_id": self.run_id,
            },
        )

    async def check_cancel(self) -> None:
        """Raise EtlCancelled when a cancel was requested (or the row is gone)."""
        row = await fetch_one_in(self.control, query("run_status"), {"run_id": self.run_id})
        if row is None or row["cancel_requested"]:
            raise EtlCancelled()

    async def cancel_requested(self) -> bool:
        try:
            await self.check_cancel()
        except EtlCancelled:
            return True
        except psycopg.Error:
            return False
        return False

    async def today(self) -> date:
        row = await fetch_one_in(self.control, query("run_today"))
        assert row is not None
        day: date = row["today"]
        return day
