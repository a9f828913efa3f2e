"""The database of one command-line run (`mysetlist ml train`, `evaluate-churn`, …)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mysetlist.core.db import Database


@asynccontextmanager
async def command_database(database_url: str) -> AsyncIterator[Database]:
    """A small pool (training holds one connection and scores on another), closed after."""
    db = Database(database_url, max_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
