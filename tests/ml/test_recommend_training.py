"""The nightly recommender training: its gate (it trains after a daily ETL run newer than
the latest recommender version, and not while an ETL run is queued or running), and its
promotion, which compares the new version with the active one on the same split."""

from __future__ import annotations

import uuid

import pytest

from mysetlist.core.db import read_sql
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.model_registry import ActiveMeasured, register_model
from mysetlist.ml.recommendations.training import MODEL_NAME, train_recommenders
from mysetlist.platform import service as platform

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


async def test_a_paired_registration_compares_numbers_measured_on_the_same_data(
    runtime: Runtime,
) -> None:
    name = f"paired-{uuid.uuid4().hex[:6]}"
    async with runtime.db.transaction() as conn:
        # v1's stored 0.90 was measured on its own (easier) data
        v1 = await register_model(conn, name, metrics={"ndcg@10": 0.90}, primary_metric="ndcg@10")
        v2 = await register_model(
            conn, name, metrics={"ndcg@10": 0.30}, primary_metric="ndcg@10",
            active_measured=ActiveMeasured(v1.version.id, 0.20),
        )  # fmt: skip
        # the active version is v2 now: a comparison made against v1 is stale, so the
        # stored-metric rule decides (0.25 < v2's 0.30)
        v3 = await register_model(
            conn, name, metrics={"ndcg@10": 0.25}, primary_metric="ndcg@10",
            active_measured=ActiveMeasured(v1.version.id, 0.10),
        )  # fmt: skip
    assert v2.activated
    assert v2.version.decision == "ndcg@10 0.3000 vs active v1 0.2000 on the same split: promoted"
    assert not v3.activated
    assert (
        v3.version.decision
        == "ndcg@10 0.2500 vs active v2 0.3000 as registered: kept the active version"
    )


async def test_training_scores_the_active_versions_choices_on_the_new_split(
    runtime: Runtime,
) -> None:
    """The active version claims 0.99 (measured on other data) with a popularity-only
    blend; replayed on the new split it scores far lower than the new hybrid on the same
    users, so the new version is promoted and both numbers are recorded."""
    tag = uuid.uuid4().hex[:6]
    groups: list[list[int]] = []
    async with runtime.db.transaction() as conn:
        for group in ("a", "b"):
            ids = []
            for n in range(12):
                cur = await conn.execute(
                    "INSERT INTO app.artists (name, genres) VALUES (%s, %s) RETURNING id",
                    (f"{group} {tag} {n}", [f"{group}-{tag}"]),
                )
                row = await cur.fetchone()
                assert row is not None
                ids.append(int(row[0]))
            groups.append(ids)
        for n in range(40):
            mine, other = groups[n % 2], groups[1 - n % 2]
            uid = await platform.create_user(conn, runtime.cipher, display_name=f"p{tag}{n}")
            # 11 of the group's 12 artists (a different one left out each) and 1 other
            follows = [a for k, a in enumerate(mine) if k != n % 12] + [other[n % 12]]
            for artist in follows:
                await conn.execute(
                    "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)", (uid, artist)
                )
        popularity_only = {
            "params": {},
            "hybrid_weights": {"components": ["most_popular"], "cold_start": [1.0],
                               "others": [1.0]},
            "serve": "hybrid_tuned",
        }  # fmt: skip
        active = await register_model(
            conn, MODEL_NAME, metrics={"ndcg@10": 0.99}, primary_metric="ndcg@10",
            params={"tuning": popularity_only},
        )  # fmt: skip
    registered = await train_recommenders(runtime.db, load_ml_settings())
    assert registered is not None
    v = registered.version
    comparison = v.params["comparison"]
    assert comparison["active_version"] == active.version.version
    assert comparison["users"] == v.metrics["users_evaluated"] > 0
    served = v.params["tuning"]["serve"]
    # the new version's number is the one its own evaluation reported, on those users
    assert v.metrics["ndcg@10"] == pytest.approx(comparison["new_ndcg@10"], abs=1e-5)
    assert v.metrics["ndcg@10"] == pytest.approx(v.metrics[f"{served}:ndcg@10"], abs=1e-5)
    assert v.metrics["active_version:ndcg@10"] < v.metrics["ndcg@10"]
    # the active version's number is its replay on this split, not its claimed 0.99 (the
    # new hybrid may score 1.0 on this small world: each fan's held-out artist is in
    # their group)
    assert v.metrics["active_version:ndcg@10"] < 0.99
    assert registered.activated, v.decision
    assert v.decision.endswith("on the same split: promoted")
    assert comparison["cold_start_active_ndcg@10"] is not None
