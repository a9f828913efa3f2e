"""Churn on the demo world: the time-split evaluation (model vs recency baseline, and
against the planted churn), what training stores per user, who may read it, the nightly
chain after the ETL, and `mysetlist ml evaluate-churn`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest

from mysetlist.core.config import load_settings
from mysetlist.core.db import Database
from mysetlist.core.job_queue import worker_context
from mysetlist.core.runtime import open_runtime
from mysetlist.demo.world import WorldSpec
from mysetlist.jobs import make_job_app
from mysetlist.ml.churn.model import (
    ARTIFACT_FORMAT,
    DEFAULT_PARAMS,
    PARAM_GRID,
    at_risk,
    fit_churn_model,
)
from mysetlist.ml.churn.service import MODEL_NAME, evaluate_churn, train_churn
from mysetlist.ml.config import MlSettings
from mysetlist.ml.features.feature_store import WATERMARK, build_pending
from mysetlist.ml.features.nightly import BUILD_FEATURES, QUEUE, TRAIN_USER_MODELS
from mysetlist.ml.features.training_data import USER_FEATURES, labelled_rows
from mysetlist.ml.model_registry import active_version, register_model
from tests.conditions import until
from tests.conftest import Servers
from tests.ml.user_model_world import LAST_DAY, World, world_in_warehouse

pytestmark = [pytest.mark.db, pytest.mark.slow]

# 90 days: a 14-day horizon needs fitting, calibration and test cut-offs 14 days apart.
SPEC = WorldSpec(users=1500, days=90, seed=7)
SETTINGS = MlSettings()


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    async with world_in_warehouse(servers.admin_url, SPEC) as built:
        await build_pending(built.db, backfill_days=88, lookback_days=2)
        yield built


async def test_the_model_beats_recency_on_the_users_at_risk_of_a_time_split(
    world: World,
) -> None:
    async with world.db.transaction() as conn:
        evaluation, split, last_day = await evaluate_churn(conn, SETTINGS)
    horizon = timedelta(days=SETTINGS.churn_horizon_days)
    # Time-ordered stages: each one's outcome window closes before the next one's cut-off.
    assert last_day == LAST_DAY
    assert split.test + horizon == LAST_DAY
    assert split.calibrate + horizon <= split.test
    assert max(split.fit) + horizon <= split.calibrate
    assert len(split.fit) >= 10
    # Only users active in the window before the test cut-off are judged: those already
    # silent that long would be easy "churners" that flatter every score.
    users = await world.db.fetch_one(
        "SELECT count(*) FILTER (WHERE days_since_last_active < %s) AS at_risk, count(*) AS all"
        " FROM analytics.ml_user_features WHERE as_of = %s",
        (SETTINGS.churn_active_window_days, split.test),
    )
    assert users is not None
    assert evaluation.rows["test"] == users["at_risk"] < users["all"]
    assert evaluation.active_window_days == SETTINGS.churn_active_window_days
    assert 0.05 < evaluation.churn_rate < 0.6
    assert evaluation.model["roc_auc"] > evaluation.baseline["roc_auc"]
    assert evaluation.model["pr_auc"] > evaluation.baseline["pr_auc"]
    # Both calibrated on the same cut-off: the Brier scores compare like with like.
    assert evaluation.model["brier"] < evaluation.baseline["brier"]
    interval = evaluation.intervals["model_minus_baseline_roc_auc"]
    assert interval["difference"] == pytest.approx(
        evaluation.model["roc_auc"] - evaluation.baseline["roc_auc"]
    )
    assert interval["low"] < interval["difference"] < interval["high"]
    # The hyper-parameters: every candidate judged on validation cut-offs, which are
    # fitting cut-offs (never the calibration or test one); the best was kept.
    tuning = evaluation.tuning
    assert tuning["tuned"]
    aucs = [c["validation_roc_auc"] for c in tuning["candidates"]]
    assert len(aucs) == len(PARAM_GRID) > 1
    assert tuning["params"] == PARAM_GRID[aucs.index(max(aucs))]
    assert set(tuning["validation_cut_offs"]) <= {d.isoformat() for d in split.fit}
    # Measured against the users the demo planted to churn by the window's end.
    assert evaluation.planted is not None
    assert 0 < evaluation.planted["model"]["positive_rate"] < evaluation.churn_rate
    assert evaluation.planted["model"]["roc_auc"] > 0.5
    assert "model_minus_baseline_roc_auc" in evaluation.planted


async def test_training_stores_a_probability_bucket_and_top_features_for_every_user(
    world: World,
) -> None:
    trained = await train_churn(world.db, SETTINGS)
    assert trained.scored_as_of == LAST_DAY
    rows = await world.db.fetch_all(
        "SELECT * FROM analytics.ml_churn_predictions WHERE as_of = %s", (LAST_DAY,)
    )
    users = await world.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.ml_user_features"
        " WHERE as_of = %s AND days_since_last_active < %s",
        (LAST_DAY, SETTINGS.churn_active_window_days),
    )
    assert users is not None
    # The users at risk, no one already silent for the whole window.
    assert len(rows) == users["n"] == trained.scored > 0
    for row in rows:
        p = row["probability"]
        expected = "high" if p >= 0.6 else "medium" if p >= 0.3 else "low"
        assert row["risk_bucket"] == expected
        assert row["model_version"] == trained.scored_version
        assert len(row["top_features"]) <= 3
        assert all(f["feature"] in USER_FEATURES and f["contribution"] > 0
                   for f in row["top_features"])  # fmt: skip
    assert {r["risk_bucket"] for r in rows} == {"low", "medium", "high"}
    # Long silence (in days, hours, or against the fan's own rate) is what most often
    # drives a high risk.
    silence = ("missed_active_days", "days_since_last_active", "hours_since_last_event",
               "silence_log_probability", "silence_ratio")  # fmt: skip
    high = [r for r in rows if r["risk_bucket"] == "high"]
    assert sum(r["top_features"][0]["feature"] in silence for r in high) > len(high) / 2
    async with world.db.transaction() as conn:
        active = await active_version(conn, MODEL_NAME)
    assert active is not None
    assert active.metrics["roc_auc"] == pytest.approx(trained.evaluation.model["roc_auc"])
    assert "baseline_roc_auc" in active.metrics
    assert "planted_roc_auc" in active.metrics


async def test_promotion_compares_the_active_version_on_the_same_split(world: World) -> None:
    """An active version whose own split made it look weak (0.5 as registered) but which
    ranks this split's test users better than the new version does: the new version's
    ROC-AUC is above 0.5, yet it is not promoted. (Fitted on those users' outcomes, it is
    an insider no honest version can beat; it only makes "better on this split" certain.)"""
    horizon, window = SETTINGS.churn_horizon_days, SETTINGS.churn_active_window_days
    async with world.db.transaction() as conn:
        _, split, _ = await evaluate_churn(conn, SETTINGS)
        test = at_risk(await labelled_rows(conn, [split.test], horizon_days=horizon), window)
        # Fitted on the test users' own outcomes: on that split nothing ranks them better.
        insider = fit_churn_model(test, test, DEFAULT_PARAMS)
        registered = await register_model(
            conn, MODEL_NAME, metrics={"roc_auc": 1.0}, primary_metric="roc_auc",
            artifact=insider.dumps(), artifact_format=ARTIFACT_FORMAT,
        )  # fmt: skip
        await conn.execute(
            "UPDATE analytics.ml_models SET metrics = '{\"roc_auc\": 0.5}' WHERE id = %s",
            (registered.version.id,),
        )
        before = await active_version(conn, MODEL_NAME)
    assert before is not None
    assert before.version == registered.version.version
    trained = await train_churn(world.db, SETTINGS)
    assert trained.evaluation.model["roc_auc"] > 0.5  # better than the active's own number
    assert not trained.activated
    assert trained.scored_version == before.version
    async with world.db.transaction() as conn:
        new = await world.db.fetch_one(
            "SELECT metrics, decision FROM analytics.ml_models WHERE name = %s AND version = %s",
            (MODEL_NAME, trained.version),
        )
        after = await active_version(conn, MODEL_NAME)
    assert new is not None
    assert after is not None
    assert after.version == before.version
    # Both numbers kept, measured on the same users.
    assert new["metrics"]["test_roc_auc"] < new["metrics"]["active_test_roc_auc"]
    assert new["metrics"]["active_version"] == before.version
    assert "on the same split: kept the active version" in new["decision"]


async def test_a_fan_reads_only_their_own_churn_risk(world: World) -> None:
    rows = await world.db.fetch_all(
        "SELECT user_id FROM analytics.ml_churn_predictions WHERE as_of = %s LIMIT 2", (LAST_DAY,)
    )
    if not rows:
        await train_churn(world.db, SETTINGS)
        rows = await world.db.fetch_all(
            "SELECT user_id FROM analytics.ml_churn_predictions WHERE as_of = %s LIMIT 2",
            (LAST_DAY,),
        )
    me, other = (str(r["user_id"]) for r in rows)
    async with world.db.as_user(me) as conn:
        cur = await conn.execute("SELECT user_id::text FROM analytics.ml_churn_predictions")
        seen = {r[0] for r in await cur.fetchall()}
        cur = await conn.execute("SELECT count(*) FROM analytics.ml_engagement_forecasts"
                                 " WHERE user_id = %s", (other,))  # fmt: skip
        row = await cur.fetchone()
    assert row is not None
    other_forecasts = row[0]
    assert seen == {me}
    assert other_forecasts == 0


async def _settled(db: Database, job_id: int) -> dict[str, Any]:
    async def row() -> dict[str, Any] | None:
        found = await db.fetch_one("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,))
        return found if found is not None and found["status"] not in ("todo", "doing") else None

    return await until(row, f"job {job_id} to settle", within=120)


async def test_the_feature_build_after_the_etl_chains_training(
    world: World, redis_url: str, tmp_path: Any
) -> None:
    # The ETL closed a day the feature store has not built yet.
    async with world.db.transaction() as conn:
        await conn.execute(
            "UPDATE analytics.watermarks SET last_full_day = %s WHERE name = %s",
            (LAST_DAY - timedelta(days=1), WATERMARK),
        )
    settings = load_settings(DATABASE_URL=world.url, REDIS_URL=redis_url,
                             MYSETLIST_DATA_DIR=str(tmp_path))  # fmt: skip
    runtime = await open_runtime(settings, world.url, redis_url)
    app = make_job_app(world.url, settings)
    try:
        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(queues=[QUEUE], concurrency=1,
                                     install_signal_handlers=False, wait=True,
                                     additional_context=worker_context(runtime))
            )  # fmt: skip
            try:
                build_job = await app.configure_task(BUILD_FEATURES).defer_async(timestamp=0)
                assert (await _settled(world.db, build_job))["status"] == "succeeded"
                build = await world.db.fetch_one(
                    "SELECT status, details FROM analytics.job_runs WHERE job_id = %s",
                    (build_job,),
                )
                assert build is not None
                assert build["details"]["days"][-1] == LAST_DAY.isoformat()
                train_job = build["details"]["training_job_id"]
                assert (await _settled(world.db, train_job))["status"] == "succeeded"
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(worker, 10)
    finally:
        await runtime.close()
    trained = await world.db.fetch_one(
        "SELECT status, details FROM analytics.job_runs WHERE task = %s ORDER BY id DESC LIMIT 1",
        (TRAIN_USER_MODELS,),
    )
    assert trained is not None
    assert trained["status"] == "succeeded"
    assert set(trained["details"]) == {"engagement", "churn"}


def test_evaluate_churn_prints_one_json_object(world: World, redis_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": world.url, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-c", "from mysetlist.cli import main; main()",
         "ml", "evaluate-churn", "--synthetic", "--json"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    churn = report["churn"]
    assert churn["model"]["roc_auc"] > churn["baseline"]["roc_auc"]
    assert set(churn["intervals"]["model_minus_baseline_roc_auc"]) == {"difference", "low", "high"}
    assert set(churn["planted"]) == {"model", "baseline", "model_minus_baseline_roc_auc"}
    assert {"roc_auc", "pr_auc", "brier"} <= set(churn["planted"]["model"])
    engagement = report["engagement"]
    assert set(engagement["baselines"]) == {"last_week", "mean_28", "zero"}
    assert engagement["model_mae"] < min(engagement["baselines"].values())
    assert engagement["intervals"]["model_minus_best_baseline_mae"]["high"] < 0


def test_risk_thresholds_out_of_order_stop_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from mysetlist.startup import load_all_settings

    monkeypatch.setenv("ML_CHURN_MEDIUM_RISK", "0.7")
    monkeypatch.setenv("ML_CHURN_HIGH_RISK", "0.6")
    with pytest.raises(typer.Exit) as stopped:
        load_all_settings()
    assert stopped.value.exit_code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: ML_CHURN_HIGH_RISK:")
