"""Training of the artist recommender on the platform's data, and its registration: the
interaction matrix from the database, tuning and test evaluation as in the offline
evaluation, then the chosen hybrid refitted on all interactions and registered as
`artist_recommender`. Promotion compares like with like: the active version's choices
(hyper-parameters and blend weights, kept in its params) are refitted on the new split's
training data and scored on the same test users as the new version; the new version is
promoted when its test NDCG@10 is no worse, and both numbers (and the paired interval of
the difference) are recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from mysetlist.core.db import Database, Row, fetch_all_in, read_sql
from mysetlist.ml.model_registry import (
    ActiveMeasured,
    ModelVersion,
    Registered,
    active_version,
    register_model,
)
from mysetlist.ml.recommendations.algorithms import (
    Hybrid,
    hybrid_from_arrays,
    hybrid_to_arrays,
    load_arrays,
    save_arrays,
)
from mysetlist.ml.recommendations.config import RecommendationSettings
from mysetlist.ml.recommendations.datasets import Interactions, from_triples
from mysetlist.ml.recommendations.evaluation import (
    Progress,
    Tuned,
    evaluate_and_tune,
    fit_hybrid,
    paired_bootstrap,
    score_configuration,
)

MODEL_NAME = "artist_recommender"
_PACKAGE = "mysetlist.ml.recommendations"
PRIMARY_METRIC = "ndcg@10"


async def interaction_rows(
    conn: psycopg.AsyncConnection[Any],
    settings: RecommendationSettings,
    *,
    user_id: str | None = None,
) -> list[Row]:
    """(user_id, item_id, weight) rows of the interaction matrix: every user's (training) or
    `user_id`'s alone (serving), from the one definition both read (interactions.sql).

    Never a prepared statement: each run is planned with its own user, so a plan made for
    every user (training) never serves one user's row by reading everyone's events."""
    params = {
        "user_id": user_id, "history_days": settings.history_days,
        "attend_events": settings.attend_events, "follow_weight": settings.follow_weight,
        "vote_weight": settings.vote_weight, "view_weight": settings.view_weight,
        "attend_weight": settings.attend_weight,
    }  # fmt: skip
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(read_sql(_PACKAGE, "interactions.sql"), params, prepare=False)
        return await cur.fetchall()


async def load_interactions(
    conn: psycopg.AsyncConnection[Any], settings: RecommendationSettings
) -> Interactions:
    """Users x artists from follows, votes, views and attendance, with artist genres as tags."""
    rows = await interaction_rows(conn, settings)
    tags = await fetch_all_in(conn, read_sql(_PACKAGE, "artist_tags.sql"))
    tag_triples = ([t["item_id"] for t in tags], [t["tag"] for t in tags],
                   [float(t["weight"]) for t in tags])  # fmt: skip
    return from_triples(
        [r["user_id"] for r in rows], [r["item_id"] for r in rows],
        [float(r["weight"]) for r in rows], tag_triples,
    )  # fmt: skip


@dataclass
class RecommenderModel:
    """What the API serves: the fitted hybrid and the ids of its rows and columns."""

    hybrid: Hybrid
    user_ids: list[str]
    artist_ids: np.ndarray[Any, np.dtype[np.int64]]

    def __post_init__(self) -> None:
        self.user_index = {u: n for n, u in enumerate(self.user_ids)}
        self.artist_index = {int(a): n for n, a in enumerate(self.artist_ids)}


def model_to_bytes(model: RecommenderModel) -> bytes:
    return save_arrays(
        {
            **hybrid_to_arrays(model.hybrid),
            "user_ids": np.asarray(model.user_ids, dtype=str),
            "artist_ids": model.artist_ids,
        }
    )


def model_from_bytes(blob: bytes) -> RecommenderModel:
    arrays = load_arrays(blob)
    return RecommenderModel(
        hybrid_from_arrays(arrays),
        [str(u) for u in arrays["user_ids"]],
        arrays["artist_ids"].astype(np.int64),
    )


@dataclass
class Comparison:
    """The new version and the active one on the same test users (warm, and cold averaged
    over k): means and the paired bootstrap interval of new - active."""

    active_version: int
    active_id: int
    users: int
    new: float
    active: float
    interval: list[float] | None
    cold_new: float | None
    cold_active: float | None

    def to_params(self) -> dict[str, Any]:
        return {
            "active_version": self.active_version, "users": self.users,
            "new_ndcg@10": round(self.new, 5), "active_ndcg@10": round(self.active, 5),
            "new_minus_active_interval": self.interval,
            "cold_start_new_ndcg@10": self.cold_new,
            "cold_start_active_ndcg@10": self.cold_active,
        }  # fmt: skip


def _mean(values: np.ndarray[Any, np.dtype[np.float64]]) -> float | None:
    return round(float(values.mean()), 5) if len(values) else None


def train_model(
    data: Interactions,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    active: ModelVersion | None = None,
) -> tuple[RecommenderModel, dict[str, Any], Comparison | None]:
    """Tune and test as the offline evaluation does, score the `active` version's choices on
    the same split (when it recorded them), then refit on every interaction."""
    result, tuned, s, per_user = evaluate_and_tune(
        data, seed=seed, progress=progress, allow_empty=True
    )
    comparison = None
    if active is not None and "tuning" in active.params:
        active_tuned = Tuned.from_params(active.params["tuning"])
        warm, cold = score_configuration(data, s, active_tuned, seed=seed)
        new_warm, new_cold = per_user.warm[tuned.serve], per_user.cold[tuned.serve]
        interval = paired_bootstrap([(new_warm, warm)], seed=seed)["interval"]
        comparison = Comparison(
            active.version, active.id, len(warm),
            float(new_warm.mean()) if len(warm) else 0.0,
            float(warm.mean()) if len(warm) else 0.0,
            interval, _mean(new_cold), _mean(cold),
        )  # fmt: skip
    hybrid = fit_hybrid(data.matrix, data.item_tags, tuned, seed)
    model = RecommenderModel(hybrid, data.user_ids, np.asarray(data.item_ids, dtype=np.int64))
    return model, result, comparison


async def train_recommenders(
    db: Database,
    settings: RecommendationSettings,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> Registered | None:
    """Train and register the artist recommender on the current data (None: no data yet)."""
    async with db.transaction() as conn:
        data = await load_interactions(conn, settings)
        active = await active_version(conn, MODEL_NAME)
    if data.n_interactions == 0:
        return None
    model, result, comparison = await asyncio.to_thread(
        train_model, data, seed=seed, progress=progress, active=active
    )
    served = result["tuning"]["serve"]
    # No user with enough interactions (a young platform) means no test items: the version
    # is registered with zeros, so it serves until one that can be measured does no worse.
    metrics = {k: v or 0.0 for k, v in result["models"][served].items()}
    metrics.update({f"{name}:ndcg@10": m["ndcg@10"] or 0.0 for name, m in result["models"].items()})
    metrics["cold_start:ndcg@10"] = result["cold_start"][served]["ndcg@10"] or 0.0
    metrics["users_evaluated"] = result["users_evaluated"]
    params: dict[str, Any] = {
        "tuning": result["tuning"], "dataset": result["dataset"], "seed": seed,
        "intervals": result["intervals"],
    }  # fmt: skip
    if comparison is not None:
        metrics[PRIMARY_METRIC] = comparison.new
        metrics[f"active_version:{PRIMARY_METRIC}"] = comparison.active
        params["comparison"] = comparison.to_params()
    blob = await asyncio.to_thread(model_to_bytes, model)
    today = datetime.now(UTC).date()
    common: dict[str, Any] = {
        "metrics": metrics, "primary_metric": PRIMARY_METRIC, "params": params,
        "artifact": blob, "artifact_format": "npz",
        "data_from": today - timedelta(days=settings.history_days), "data_to": today,
    }  # fmt: skip
    async with db.transaction() as conn:
        measured = (
            None if comparison is None else ActiveMeasured(comparison.active_id, comparison.active)
        )
        return await register_model(conn, MODEL_NAME, active_measured=measured, **common)
