"""What `mysetlist ml evaluate-churn` and `mysetlist ml train-churn` do and print: bring
the feature store up to the ETL, then evaluate (or train) the churn and engagement models
on time splits, as one JSON-ready dict and as tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from mysetlist.core.db import Database
from mysetlist.ml.churn.service import evaluate_churn
from mysetlist.ml.engagement.service import evaluate_engagement
from mysetlist.ml.features.config import MlSettings
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
    db = Database(database_url, max_size=2)
    await db.open()
    try:
        await _prepare(db, settings)
        async with db.transaction() as conn:
            churn, _, _ = await evaluate_churn(conn, settings)
            engagement, _, _ = await evaluate_engagement(conn)
    finally:
        await db.close()
    if synthetic and churn.planted is None:
        raise NoDemoWorld("no demo world in this database: run `mysetlist demo --no-serve`")
    if not synthetic:
        churn.planted = None
    return {"churn": churn.as_dict(), "engagement": engagement.as_dict()}


async def train_report(database_url: str, settings: MlSettings) -> dict[str, Any]:
    db = Database(database_url, max_size=2)
    await db.open()
    try:
        await _prepare(db, settings)
        return await train_user_models(db, settings)
    finally:
        await db.close()


def churn_table(report: dict[str, Any]) -> Table:
    churn = report["churn"]
    table = Table(
        title=f"churn in the {churn['horizon_days']} days after {churn['split']['test']}"
        f" ({churn['rows']['test']} users, {churn['churn_rate']:.1%} churned;"
        f" fitted on {len(churn['split']['fit'])} earlier cut-offs)"
    )
    for column in ("model", "labels", "ROC-AUC", "PR-AUC", "Brier"):
        table.add_column(column, justify="left" if column in ("model", "labels") else "right")
    rows = [("gradient boosting", "observed", churn["model"]),
            ("recency baseline", "observed", churn["baseline"])]  # fmt: skip
    if churn.get("planted"):
        rows += [("gradient boosting", "planted churn", churn["planted"]["model"]),
                 ("recency baseline", "planted churn", churn["planted"]["baseline"])]  # fmt: skip
    for name, labels, s in rows:
        table.add_row(
            name, labels, f"{s['roc_auc']:.3f}", f"{s['pr_auc']:.3f}", f"{s['brier']:.3f}"
        )
    return table


def engagement_table(report: dict[str, Any]) -> Table:
    e = report["engagement"]
    table = Table(
        title=f"7-day engagement forecast after {e['split']['test']} ({e['rows']['test']} users,"
        f" mean {e['mean_engagement']:.4f})"
    )
    table.add_column("forecast")
    table.add_column("MAE", justify="right")
    table.add_row("gradient boosting", f"{e['model_mae']:.4f}")
    table.add_row("same as last week", f"{e['naive_mae']:.4f}")
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
