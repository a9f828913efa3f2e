"""A demo world of its own, loaded through the ETL, for the feature store, churn and
engagement tests (each module builds one into a fresh database: the numbers they check
must not depend on what other tests add)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mysetlist.core.db import Database
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo.world import WorldSpec, build_world
from mysetlist.warehouse import pipeline
from mysetlist.warehouse.config import EtlConfig
from tests.conftest import migrated_database

# A fixed present (a seed then gives the same world, down to every id, on every build).
WORLD_NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
LAST_DAY = WORLD_NOW.date() - timedelta(days=1)  # the newest closed day
CIPHER = FieldCipher(b"m" * 32)


@dataclass(frozen=True)
class World:
    url: str
    db: Database
    spec: WorldSpec
    first_day: date


async def load_warehouse(url: str, first_day: date, last_day: date) -> None:
    result = await pipeline.execute(
        url,
        EtlConfig(parallelism=2),
        request=pipeline.RunRequest(
            trigger="cli", mode="range", from_day=first_day, to_day=last_day
        ),
    )
    assert result is not None
    assert result.status == "succeeded", result


def build(url: str, spec: WorldSpec) -> date:
    """Build `spec`'s world as of WORLD_NOW; its first day."""
    build_world(url, spec, now=WORLD_NOW, cipher=CIPHER)
    return (WORLD_NOW - timedelta(days=spec.days)).date()


@asynccontextmanager
async def world_in_warehouse(admin_url: str, spec: WorldSpec) -> AsyncIterator[World]:
    """A fresh database holding `spec`'s world, its whole history loaded by the ETL."""
    with migrated_database(admin_url, "mysetlist_ml_users") as url:
        first_day = build(url, spec)
        await load_warehouse(url, first_day, LAST_DAY)
        db = Database(url, max_size=4)
        await db.open()
        try:
            yield World(url, db, spec, first_day)
        finally:
            await db.close()
