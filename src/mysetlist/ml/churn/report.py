"""What `mysetlist ml evaluate-churn` and `mysetlist ml train-churn` do and print: bring
the feature store up to the ETL, then evaluate (or train) the churn and engagement models
on time splits, as one JSON-ready dict and as tables."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from mysetlist.core.db import Database
from mysetlist.ml.churn.service import evaluate_churn
from mysetlist.ml.command_database import command_database
from mysetlist.ml.config import MlSettings
from mysetlist.ml.engagement.service import evaluate_engagement
from mysetlist.ml.features.feature_store import build_pending
from mysetlist.ml.features.nightly import train_user_models


class NoDemoWorld(RuntimeError):
    """--synthetic asked for the demo world's truth, and the database holds none."""


async def _prepare(db: Database, settings: MlSettings) -> None:
    await build_pending(
        db,
        backfill_days=settings.feature_backfill_days,
        lookback_days=settings.feature_lookback_days,
    )


async def evaluate_report(
    database_url: str, settings: MlSettings, *, synthetic: bool
) -> dict[str, Any]:
    """{"churn": {...}, "engagement": {...}}; with `synthetic`, the demo world's planted
    churn must be there and the churn part includes scores against it."""
    async with command_database(database_url) as db:
        await _prepare(db, settings)
        async with db.transaction() as conn:
            churn, _, _ = await evaluate_churn(conn, settings)
            engagement, _, _ = await evaluate_engagement(conn)
    if synthetic and churn.planted is None:
        raise NoDemoWorld("no demo world in this database: run `mysetlist demo --no-serve`")
    if not synthetic:
        churn.planted = None
    return {"churn": asdict(churn), "engagement": asdict(engagement)}


async def train_report(database_url: str, settings: MlSettings) -> dict[str, Any]:
    async with command_database(database_url) as db:
        await _prepare(db, settings)
        return await train_user_models(db, settings)


def _interval(i: dict[str, float]) -> str:
    return f"{i['difference']:+.3f} [{i['low']:+.3f}, {i['high']:+.3f}]"


def churn_table(report: dict[str, Any]) -> Table:
    churn = report["churn"]
    table = Table(
        title=f"churn in the {churn['horizon_days']} days after {churn['split']['test']}"
        f" ({churn['rows']['test']} users active in the {churn['active_window_days']} days"
        f" before, {churn['churn_rate']:.1%} churned; fitted on"
        f" {len(churn['split']['fit'])} earlier cut-offs)",
        caption="ROC-AUC minus the baseline's on the same users, paired bootstrap 95 % interval",
    )
    for column in ("model", "labels", "ROC-AUC", "PR-AUC", "Brier", "vs baseline"):
        table.add_column(column, justify="left" if column in ("model", "labels") else "right")
    rows = [("gradient boosting", "observed", churn["model"],
             churn["intervals"]["model_minus_baseline_roc_auc"]),
            ("recency baseline", "observed", churn["baseline"], None)]  # fmt: skip
    if churn.get("planted"):
        planted = churn["planted"]
        rows += [("gradient boosting", "planted churn", planted["model"],
                  planted.get("model_minus_baseline_roc_auc")),
                 ("recency baseline", "planted churn", planted["baseline"], None)]  # fmt: skip
    for name, labels, s, interval in rows:
        table.add_row(
            name, labels, f"{s['roc_auc']:.3f}", f"{s['pr_auc']:.3f}", f"{s['brier']:.3f}",
            _interval(interval) if interval else "",
        )  # fmt: skip
    return table


def engagement_table(report: dict[str, Any]) -> Table:
    e = report["engagement"]
    interval = e["intervals"]["model_minus_best_baseline_mae"]
    table = Table(
        title=f"7-day engagement forecast after {e['split']['test']} ({e['rows']['test']} users,"
        f" mean {e['mean_engagement']:.4f})",
        caption=f"model minus {e['best_baseline']} MAE: {interval['difference']:+.4f}"
        f" [{interval['low']:+.4f}, {interval['high']:+.4f}] (paired bootstrap 95 %)",
    )
    table.add_column("forecast")
    table.add_column("MAE", justify="right")
    table.add_row("gradient boosting", f"{e['model_mae']:.4f}")
    names = {"last_week": "same as last week", "mean_28": "28-day mean", "zero": "zero"}
    for name, value in e["baselines"].items():
        table.add_row(names.get(name, name), f"{value:.4f}")
    return table


def train_summary(database_url: str, settings: MlSettings) -> str:
    """`mysetlist ml train`'s line for the churn and engagement models."""
    import asyncio

    from mysetlist.ml.features.training_data import NotEnoughHistory

    try:
        got = asyncio.run(train_report(database_url, settings))
    except NotEnoughHistory as exc:
        return f"churn, engagement_forecast: not trained ({exc})"
    c, e = got["churn"], got["engagement"]
    return (
        f"churn v{c['version']}: {c['decision']} (roc_auc {c['roc_auc']:.4f},"
        f" recency baseline {c['baseline_roc_auc']:.4f})\n"
        f"engagement_forecast v{e['version']}: {e['decision']} (mae {e['mae']:.4f},"
        f" same as last week {e['naive_mae']:.4f})"
    )
