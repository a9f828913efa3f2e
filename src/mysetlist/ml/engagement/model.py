"""The 7-day engagement forecast: each user's mean daily engagement score over the 7 days
after a cut-off, by a gradient-boosting regressor on the user features (absolute-error
loss, as it is judged by MAE), against three baselines: "same as last week"
(engagement_7, the mean over the 7 days up to the cut-off), the 28-day mean
(engagement_28) and zero (a strong one under MAE: most users have no activity in a
given week)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingRegressor

from mysetlist.ml.features.training_data import USER_FEATURES, FeatureFrame
from mysetlist.ml.model_registry import PickledArtifact

ARTIFACT_FORMAT = "pickle:mysetlist.ml.engagement.model.EngagementModel"
HORIZON_DAYS = 7
BOOTSTRAP_SAMPLES = 1000
PARAMS: dict[str, Any] = {
    "loss": "absolute_error", "learning_rate": 0.05, "max_iter": 300, "max_leaf_nodes": 15,
    "min_samples_leaf": 40, "early_stopping": False, "random_state": 0,
}  # fmt: skip


@dataclass
class EngagementModel(PickledArtifact):
    regressor: HistGradientBoostingRegressor
    features: tuple[str, ...] = USER_FEATURES

    def forecast(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        # Engagement scores live in [0, 1].
        forecast: NDArray[np.float64] = np.clip(self.regressor.predict(x), 0.0, 1.0)
        return forecast


def fit_engagement_model(frame: FeatureFrame) -> EngagementModel:
    return EngagementModel(
        HistGradientBoostingRegressor(**PARAMS).fit(frame.x, frame.engagement_next_7)
    )


def naive_forecast(frame: FeatureFrame) -> NDArray[np.float64]:
    """Same as last week."""
    return frame.column("engagement_7")


def baseline_forecasts(frame: FeatureFrame) -> dict[str, NDArray[np.float64]]:
    """Every baseline's forecast, by name."""
    return {
        "last_week": naive_forecast(frame),
        "mean_28": frame.column("engagement_28"),
        "zero": np.zeros(len(frame)),
    }


def mae(truth: NDArray[np.float64], forecast: NDArray[np.float64]) -> float:
    return float(np.mean(np.abs(truth - forecast))) if len(truth) else float("nan")


def paired_mae_interval(
    truth: NDArray[np.float64],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """MAE of `a` minus that of `b` on the same users, and its paired bootstrap 95 %
    interval (users resampled with replacement; the per-user error differences)."""
    difference = np.abs(truth - a) - np.abs(truth - b)
    rng = np.random.default_rng(seed)
    means = np.array(
        [difference[rng.integers(0, len(difference), len(difference))].mean()
         for _ in range(samples)]
    )  # fmt: skip
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"difference": float(difference.mean()), "low": float(lo), "high": float(hi)}
