"""Training of the artist recommender on the platform's data, and its registration: the
interaction matrix from the database, tuning and test evaluation as in the offline
evaluation, then the chosen hybrid refitted on all interactions and registered as
`artist_recommender` (promoted only when its test NDCG@10 is no worse than the active one's).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from mysetlist.core.db import Database, fetch_all_in, read_sql
from mysetlist.ml.model_registry import Registered, register_model
from mysetlist.ml.recommendations.algorithms import (
    Hybrid,
    hybrid_from_arrays,
    hybrid_to_arrays,
    load_arrays,
    save_arrays,
)
from mysetlist.ml.recommendations.config import RecommendationSettings
from mysetlist.ml.recommendations.datasets import Interactions, from_triples
from mysetlist.ml.recommendations.evaluation import Progress, evaluate_and_tune, fit_hybrid

MODEL_NAME = "artist_recommender"
_PACKAGE = "mysetlist.ml.recommendations"
PRIMARY_METRIC = "ndcg@10"


async def load_interactions(
    conn: psycopg.AsyncConnection[Any], settings: RecommendationSettings
) -> Interactions:
    """Users x artists from follows, votes, views and attendance, with artist genres as tags."""
    rows = await fetch_all_in(conn, read_sql(_PACKAGE, "interactions.sql"), _weights(settings))
    tags = await fetch_all_in(conn, read_sql(_PACKAGE, "artist_tags.sql"))
    tag_triples = ([t["item_id"] for t in tags], [t["tag"] for t in tags],
                   [float(t["weight"]) for t in tags])  # fmt: skip
    return from_triples(
        [r["user_id"] for r in rows], [r["item_id"] for r in rows],
        [float(r["weight"]) for r in rows], tag_triples,
    )  # fmt: skip


def _weights(settings: RecommendationSettings) -> dict[str, Any]:
    return {
        "history_days": settings.history_days, "attend_events": settings.attend_events,
        "follow_weight": settings.follow_weight, "vote_weight": settings.vote_weight,
        "view_weight": settings.view_weight, "attend_weight": settings.attend_weight,
    }  # fmt: skip


def history_params(settings: RecommendationSettings, user_id: str) -> dict[str, Any]:
    return {**_weights(settings), "user_id": user_id}


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


def train_model(
    data: Interactions, *, seed: int = 0, progress: Progress | None = None
) -> tuple[RecommenderModel, dict[str, Any]]:
    """Tune and test as the offline evaluation does, then refit on every interaction."""
    result, tuned = evaluate_and_tune(data, seed=seed, progress=progress)
    hybrid = fit_hybrid(data.matrix, data.item_tags, tuned, seed)
    model = RecommenderModel(hybrid, data.user_ids, np.asarray(data.item_ids, dtype=np.int64))
    return model, result


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
    if data.n_interactions == 0:
        return None
    model, result = await asyncio.to_thread(train_model, data, seed=seed, progress=progress)
    served = result["tuning"]["serve"]
    # No user with 10+ interactions (a young platform) means no test items: the version is
    # registered with zeros, so it serves until one that can be measured does no worse.
    metrics = {k: v or 0.0 for k, v in result["models"][served].items()}
    metrics.update({f"{name}:ndcg@10": m["ndcg@10"] or 0.0 for name, m in result["models"].items()})
    metrics["users_evaluated"] = result["users_evaluated"]
    blob = await asyncio.to_thread(model_to_bytes, model)
    today = datetime.now(UTC).date()
    async with db.transaction() as conn:
        return await register_model(
            conn, MODEL_NAME, metrics=metrics, primary_metric=PRIMARY_METRIC,
            params={"tuning": result["tuning"], "dataset": result["dataset"], "seed": seed},
            artifact=blob, artifact_format="npz",
            data_from=today - timedelta(days=settings.history_days), data_to=today,
        )  # fmt: skip
