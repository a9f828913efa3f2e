"""The 7-day engagement forecast on the demo world: its MAE beats "same as last week", the
28-day mean and zero on a time split (with a paired interval), every user gets a stored
forecast, and a version that is not better than the active one on the same test users is
registered but not used."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mysetlist.demo.world import WorldSpec
from mysetlist.ml.engagement.model import ARTIFACT_FORMAT, HORIZON_DAYS, fit_engagement_model
from mysetlist.ml.engagement.service import MODEL_NAME, evaluate_engagement, train_engagement
from mysetlist.ml.features.feature_store import build_pending
from mysetlist.ml.features.training_data import labelled_rows
from mysetlist.ml.model_registry import active_version, register_model
from tests.conftest import Servers
from tests.ml.user_model_world import LAST_DAY, World, world_in_warehouse

pytestmark = [pytest.mark.db, pytest.mark.slow]

SPEC = WorldSpec(users=800, days=50, seed=3)


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    async with world_in_warehouse(servers.admin_url, SPEC) as built:
        await build_pending(built.db, backfill_days=48, lookback_days=2)
        yield built


async def test_the_forecast_beats_same_as_last_week_on_a_time_split(world: World) -> None:
    async with world.db.transaction() as conn:
        evaluation, split, last_day = await evaluate_engagement(conn)
    assert last_day == LAST_DAY
    assert (LAST_DAY - split.test).days == 7
    assert (split.test - split.calibrate).days >= 7  # every fitting outcome closed by the test
    assert evaluation.rows["test"] > 100
    assert evaluation.model_mae < evaluation.naive_mae == evaluation.baselines["last_week"]
    # Zero forecast: its error is the mean engagement itself.
    assert evaluation.baselines["zero"] == pytest.approx(evaluation.mean_engagement)
    assert evaluation.baselines["mean_28"] > 0
    assert evaluation.best_baseline == min(
        evaluation.baselines, key=evaluation.baselines.__getitem__
    )
    interval = evaluation.intervals["model_minus_best_baseline_mae"]
    assert interval["difference"] == pytest.approx(
        evaluation.model_mae - evaluation.baselines[evaluation.best_baseline]
    )
    assert interval["low"] < interval["difference"] < interval["high"]


async def test_every_user_gets_a_forecast_from_the_active_version(world: World) -> None:
    first = await train_engagement(world.db)
    rows = await world.db.fetch_all(
        "SELECT f.forecast_7d, f.last_week, f.model_version, u.engagement_7"
        " FROM analytics.ml_engagement_forecasts f"
        " JOIN analytics.ml_user_features u USING (user_id, as_of) WHERE f.as_of = %s",
        (LAST_DAY,),
    )
    assert len(rows) == first.forecasts > 0
    assert all(0 <= r["forecast_7d"] <= 1 for r in rows)
    assert all(r["last_week"] == r["engagement_7"] for r in rows)
    assert {r["model_version"] for r in rows} == {first.forecast_version}

    # An active version that looks poor as registered (MAE 1.0 on its own split) but
    # forecasts this split's test users better than the new version does (fitted on their
    # very outcomes: an insider, which makes "better on this split" certain): the next
    # version is registered, kept inactive, and the forecasts come from the active one.
    async with world.db.transaction() as conn:
        _, split, _ = await evaluate_engagement(conn)
        test = await labelled_rows(conn, [split.test], horizon_days=HORIZON_DAYS)
        insider = await register_model(
            conn, MODEL_NAME, metrics={"mae": 0.0}, primary_metric="mae",
            higher_is_better=False, artifact=fit_engagement_model(test).dumps(),
            artifact_format=ARTIFACT_FORMAT,
        )  # fmt: skip
        await conn.execute(
            "UPDATE analytics.ml_models SET metrics = '{\"mae\": 1.0}' WHERE id = %s",
            (insider.version.id,),
        )
    assert insider.activated
    second = await train_engagement(world.db)
    assert second.evaluation.model_mae < 1.0  # the old rule would have promoted it
    assert not second.activated
    assert "on the same split: kept the active version" in second.decision
    assert second.forecast_version == insider.version.version
    stored = await world.db.fetch_one(
        "SELECT metrics FROM analytics.ml_models WHERE name = %s AND version = %s",
        (MODEL_NAME, second.version),
    )
    assert stored is not None
    # Both numbers kept, measured on the same users.
    assert stored["metrics"]["active_mae"] < stored["metrics"]["mae"]
    assert stored["metrics"]["active_version"] == insider.version.version
    assert {"last_week_mae", "mean_28_mae", "zero_mae"} <= set(stored["metrics"])
    async with world.db.transaction() as conn:
        active = await active_version(conn, MODEL_NAME)
    assert active is not None
    assert active.version == insider.version.version
    versions = await world.db.fetch_all(
        "SELECT DISTINCT model_version FROM analytics.ml_engagement_forecasts WHERE as_of = %s",
        (LAST_DAY,),
    )
    assert [r["model_version"] for r in versions] == [insider.version.version]


async def test_retraining_on_the_same_data_keeps_promoting(world: World) -> None:
    """The registered version is the evaluated one (it never saw the test week), so a
    retraining on unchanged data ties the active version on the same users and is
    promoted: the gate does not freeze the first version in place."""
    async with world.db.transaction() as conn:  # whatever an earlier test left active
        await conn.execute(
            "UPDATE analytics.ml_models SET active = false WHERE name = %s", (MODEL_NAME,)
        )
    first = await train_engagement(world.db)
    again = await train_engagement(world.db)
    assert first.activated
    assert again.activated
    assert "on the same split: promoted" in again.decision
