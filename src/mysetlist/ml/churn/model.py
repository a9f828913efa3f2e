"""The churn model and its recency baseline, fitted and evaluated on time splits only.

- Model: scikit-learn's HistGradientBoostingClassifier on every user feature, its
  probabilities calibrated (sigmoid) on a later cut-off than it was fitted on
  (CalibratedClassifierCV over the frozen fitted model: a time-ordered split, not folds).
- Baseline: recency only, a logistic regression on log(1 + days since last activity).
- Contributions (the "top features" stored per user): for each feature, the change in the
  user's churn probability when that one feature is replaced by its median among the
  fitting rows, all else kept. It is a one-at-a-time sensitivity, honest about what it is:
  not additive (the contributions need not sum to the probability) and blind to
  interactions; cheap (one extra prediction per feature) and readable ("days since last
  activity: 12 raised the risk by 0.31").
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from mysetlist.ml.features.training_data import USER_FEATURES, FeatureFrame

ARTIFACT_FORMAT = "pickle:mysetlist.ml.churn.model.ChurnModel"
# Shallow and slow: the signal is a few strong, mostly monotone features (chosen on the
# demo world's validation cut-offs; deeper trees overfit and lost to the baseline).
PARAMS: dict[str, Any] = {
    "learning_rate": 0.03, "max_iter": 200, "max_depth": 3, "min_samples_leaf": 100,
    "l2_regularization": 1.0, "early_stopping": False, "random_state": 0,
}  # fmt: skip
# Longer silence never lowers the risk.
RISING = ("days_since_last_active", "missed_active_days")
TOP_FEATURES = 3


@dataclass
class ChurnModel:
    classifier: CalibratedClassifierCV
    medians: NDArray[np.float64]
    features: tuple[str, ...] = USER_FEATURES

    def probability(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        p: NDArray[np.float64] = self.classifier.predict_proba(x)[:, 1]
        return p

    def contributions(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per row and feature: probability minus the probability with that feature at
        its fitting median (positive: the feature's value raises the risk)."""
        base = self.probability(x)
        out = np.empty_like(x)
        for j in range(x.shape[1]):
            moved = x.copy()
            moved[:, j] = self.medians[j]
            out[:, j] = base - self.probability(moved)
        return out

    def top_features(
        self, x: NDArray[np.float64], k: int = TOP_FEATURES
    ) -> list[list[dict[str, Any]]]:
        contrib = self.contributions(x)
        tops = []
        for row, c in zip(x, contrib, strict=True):
            order = np.argsort(-c)[:k]
            tops.append(
                [
                    {"feature": self.features[j], "value": round(float(row[j]), 4),
                     "contribution": round(float(c[j]), 4)}
                    for j in order if round(float(c[j]), 4) > 0  # a rounded 0 explains nothing
                ]
            )  # fmt: skip
        return tops

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(artifact: bytes) -> ChurnModel:
        # Our own registry's artifact, written by `dumps` (never user input).
        model = pickle.loads(artifact)
        assert isinstance(model, ChurnModel)
        return model


def fit_churn_model(fit: FeatureFrame, calibrate: FeatureFrame) -> ChurnModel:
    monotone = [1 if f in RISING else 0 for f in USER_FEATURES]
    booster = HistGradientBoostingClassifier(**PARAMS, monotonic_cst=monotone)
    booster.fit(fit.x, fit.churned)
    calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method="sigmoid")
    calibrated.fit(calibrate.x, calibrate.churned)
    return ChurnModel(calibrated, np.median(fit.x, axis=0))


@dataclass
class RecencyBaseline:
    regression: LogisticRegression

    @staticmethod
    def _x(frame: FeatureFrame) -> NDArray[np.float64]:
        return np.log1p(frame.column("days_since_last_active")).reshape(-1, 1)

    @classmethod
    def fit(cls, frame: FeatureFrame) -> RecencyBaseline:
        return cls(LogisticRegression().fit(cls._x(frame), frame.churned))

    def probability(self, frame: FeatureFrame) -> NDArray[np.float64]:
        p: NDArray[np.float64] = self.regression.predict_proba(self._x(frame))[:, 1]
        return p


def scores(truth: NDArray[np.bool_], probability: NDArray[np.float64]) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier score and the positive rate; the AUCs
    are NaN when the truth has a single class."""
    both = 0 < truth.sum() < len(truth)
    return {
        "roc_auc": float(roc_auc_score(truth, probability)) if both else float("nan"),
        "pr_auc": float(average_precision_score(truth, probability)) if both else float("nan"),
        "brier": float(brier_score_loss(truth, probability)) if len(truth) else float("nan"),
        "positive_rate": float(truth.mean()) if len(truth) else float("nan"),
    }


def risk_bucket(probability: float, *, medium: float, high: float) -> str:
    return "high" if probability >= high else "medium" if probability >= medium else "low"
