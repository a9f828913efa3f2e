"""The nightly recommender training's gate: it trains after a daily ETL run newer than the
latest recommender version, and not while an ETL run is queued or running."""

from __future__ import annotations

import pytest

from mysetlist.core.db import read_sql
from mysetlist.core.runtime import Runtime
from mysetlist.ml.model_registry import register_model
from mysetlist.ml.recommendations.training import MODEL_NAME

pytestmark = pytest.mark.db


async def test_training_follows_each_daily_etl_run_and_waits_for_a_running_one(
    runtime: Runtime,
) -> None:
    async def due() -> bool:
        async with runtime.db.transaction() as conn:
            cur = await conn.execute(
                read_sql("mysetlist.ml.recommendations", "training_due.sql"), {"name": MODEL_NAME}
            )
            row = await cur.fetchone()
            assert row is not None
            return bool(row[0])

    async with runtime.db.transaction() as conn:
        # a trained version newer than every ETL run so far: nothing to do
        await register_model(conn, MODEL_NAME, metrics={"ndcg@10": 0.0}, primary_metric="ndcg@10")
    assert not await due()
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, finished_at)"
            " VALUES ('schedule', 'daily', '{}', 'succeeded', clock_timestamp())"
        )
    assert await due()
    async with runtime.db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status)"
            " VALUES ('schedule', 'daily', '{}', 'running') RETURNING id"
        )
        running = await cur.fetchone()
        assert running is not None
    try:
        assert not await due()  # the ETL is still going: wait for it
    finally:
        async with runtime.db.transaction() as conn:
            await conn.execute(
                "UPDATE analytics.etl_runs SET status = 'failed', finished_at = clock_timestamp()"
                " WHERE id = %s",
                (running[0],),
            )
    assert await due()  # a failed run is not a reason, the earlier succeeded one still is
    async with runtime.db.transaction() as conn:
        await register_model(conn, MODEL_NAME, metrics={"ndcg@10": 0.0}, primary_metric="ndcg@10")
    assert not await due()
