"""Train the cross-artist setlist ranker on every artist's played shows and register it.

The penalty is tuned on validation shows (the most recent fifth by date, the model fitted on
the shows before them); the registered metrics are those validation shows' F1 at the chosen
set size and F1@N, each artist corrected from its shows before them. The version kept is the
refit on every show; it becomes active when its validation F1 is no worse than the active
version's (`model_registry.register_model`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import psycopg

from mysetlist.core.db import Database
from mysetlist.ml.model_registry import Registered, active_ref, model_artifact, register_model
from mysetlist.ml.setlists.offline_evaluation import score_ranking
from mysetlist.ml.setlists.predictor import MODEL_NAME, LoadedRanker
from mysetlist.ml.setlists.ranker import (
    L2_GRID,
    MAX_TRAINING_ROWS,
    VALIDATION_SHARE,
    CrossArtistRanker,
    Tuning,
    best_set_size,
    calibrate_to_length,
    tune_and_fit,
)
from mysetlist.ml.setlists.setlist_history import PlayedShow
from mysetlist.ml.setlists.setlist_store import played_setlists
from mysetlist.ml.setlists.signals import Target, build_signals

ARTIFACT_FORMAT = "json"


@dataclass(frozen=True)
class Fitted:
    ranker: CrossArtistRanker
    tuning: Tuning
    metrics: dict[str, float]


def validation_metrics(
    ranker: CrossArtistRanker | None, artists: Sequence[Sequence[Target]], tuning: Tuning
) -> dict[str, float]:
    """F1 at the chosen set size and F1@N on the validation shows, each artist's correction
    fitted on its shows before them."""
    if ranker is None or tuning.validation_from is None:
        return {"f1": 0.0, "f1_at_n": 0.0, "validation_shows": 0.0}
    f1, at_n = [], []
    for targets in artists:
        earlier = [t for t in targets if t.date < tuning.validation_from]
        later = [t for t in targets if t.date >= tuning.validation_from and t.songs.size]
        if not later:
            continue
        adjustment = ranker.fit_artist(earlier)
        for target in later:
            p = calibrate_to_length(
                ranker.probabilities(target.signals, adjustment),
                target.recent_length, target.expected_debuts,
            )  # fmt: skip
            ranked = [int(i) for i in target.songs[np.argsort(-p, kind="stable")]]
            length = best_set_size(p, target.expected_debuts)
            scores = score_ranking(ranked, target.true_songs, target.true_length, length)  # type: ignore[arg-type]
            f1.append(scores["f1"])
            at_n.append(scores["f1_at_n"])
    return {
        "f1": round(float(np.mean(f1)), 4) if f1 else 0.0,
        "f1_at_n": round(float(np.mean(at_n)), 4) if at_n else 0.0,
        "validation_shows": float(len(f1)),
    }


def fit_ranker_for_registry(histories: Sequence[Sequence[PlayedShow]]) -> Fitted | None:
    """Fit on every artist with 2+ shows; None when there is nothing to learn from."""
    artists = [build_signals(h).targets[1:] for h in histories if len(h) >= 2]
    if not any(t.songs.size for targets in artists for t in targets):
        return None
    ranker, tuning = tune_and_fit(artists)
    metrics = validation_metrics(tuning.validation_ranker, artists, tuning)
    metrics["validation_log_loss"] = tuning.validation_log_loss.get(tuning.l2, float("nan"))
    return Fitted(ranker, tuning, metrics)


async def train_setlist_ranker(db: Database) -> Registered | None:
    """Train on the played setlists and register the version; None without any."""
    async with db.transaction() as conn:
        setlists = await played_setlists(conn)
    histories = [shows for _, shows in setlists.values()]
    fitted = await asyncio.to_thread(fit_ranker_for_registry, histories)
    if fitted is None:
        return None
    days = [s.date for shows in histories for s in shows]
    async with db.transaction() as conn:
        return await register_model(
            conn, MODEL_NAME, metrics=fitted.metrics, primary_metric="f1",
            params={
                "l2": fitted.tuning.l2, "l2_grid": list(L2_GRID),
                "validation_share": VALIDATION_SHARE,
                "validation_log_loss": {str(k): v for k, v in
                                        fitted.tuning.validation_log_loss.items()},
                "max_training_rows": MAX_TRAINING_ROWS,
                "training_rows": fitted.ranker.training_rows,
                "artist_prior_variance": fitted.ranker.tau2.round(5).tolist(),
            },
            artifact=orjson.dumps(fitted.ranker.to_json()), artifact_format=ARTIFACT_FORMAT,
            data_from=min(days), data_to=max(days),
        )  # fmt: skip


@dataclass
class _Cache:
    key: tuple[int, datetime] | None = None  # the version's id and training time
    ranker: LoadedRanker | None = None


_cache = _Cache()  # this process's copy of the active version


async def active_ranker(conn: psycopg.AsyncConnection[Any]) -> LoadedRanker | None:
    """The active registered ranker, loaded once per version in this process (a lookup of
    the active id per call: a promoted version is used from the next prediction on)."""
    ref = await active_ref(conn, MODEL_NAME)
    if ref is None:
        return None
    key = (ref.id, ref.trained_at)
    if _cache.key != key or _cache.ranker is None:
        artifact = await model_artifact(conn, ref.id)
        assert artifact is not None
        model = CrossArtistRanker.from_json(orjson.loads(artifact))
        _cache.key, _cache.ranker = key, LoadedRanker(ref.version, model)
    return _cache.ranker
