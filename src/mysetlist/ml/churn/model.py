"""The churn model and its recency baseline, fitted and evaluated on time splits only.

- Population at risk: at each cut-off, only the users active in the `active_window_days`
  before it (by default the horizon). A user already silent that long has churned by the
  label's own definition; counting them would make every score look better than it is.
- Model: scikit-learn's HistGradientBoostingClassifier on every user feature, its
  hyper-parameters chosen among `PARAM_GRID` by ROC-AUC on validation cut-offs (the newest
  fitting cut-offs, with a model fitted on the cut-offs whose outcomes closed before them),
  then refitted on every fitting cut-off and calibrated (sigmoid) on a later cut-off
  (CalibratedClassifierCV over the frozen fitted model: a time-ordered split, not folds).
- Baseline: recency only, a logistic regression on log(1 + days since last activity),
  recalibrated (sigmoid) on the same cut-off as the model, so that their Brier scores
  compare rankings and fits, not one calibration step against none.
- Uncertainty: a paired bootstrap over test users of the model's ROC-AUC minus the
  baseline's (same resampled users for both).
- Contributions (the "top features" stored per user): for each feature, the change in the
  user's churn probability when that one feature is replaced by its median among the
  fitting rows, all else kept. It is a one-at-a-time sensitivity, honest about what it is:
  not additive (the contributions need not sum to the probability) and blind to
  interactions; cheap (one extra prediction per feature) and readable ("days since last
  activity: 12 raised the risk by 0.31").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from mysetlist.ml.features.training_data import USER_FEATURES, FeatureFrame
from mysetlist.ml.model_registry import PickledArtifact

ARTIFACT_FORMAT = "pickle:mysetlist.ml.churn.model.ChurnModel"
_FIXED: dict[str, Any] = {"l2_regularization": 1.0, "early_stopping": False, "random_state": 0}
# The candidates `choose_params` tries on the validation cut-offs, shallow to deeper: the
# signal is a few strong, mostly monotone features, so deep trees mostly fit noise.
PARAM_GRID: tuple[dict[str, Any], ...] = tuple(
    {**candidate, **_FIXED}
    for candidate in (
        {"learning_rate": 0.05, "max_iter": 200, "max_depth": 2, "min_samples_leaf": 200},
        {"learning_rate": 0.03, "max_iter": 200, "max_depth": 3, "min_samples_leaf": 100},
        {"learning_rate": 0.05, "max_iter": 300, "max_depth": 4, "min_samples_leaf": 100},
    )
)
# Used untuned when the history holds too few cut-offs for a validation split.
DEFAULT_PARAMS = PARAM_GRID[1]
VALIDATION_CUT_OFFS = 3  # the newest fitting cut-offs judge the candidates
BOOTSTRAP_SAMPLES = 1000
# Longer silence never lowers the risk.
RISING = ("days_since_last_active", "missed_active_days", "hours_since_last_event")
TOP_FEATURES = 3


@dataclass
class ChurnModel(PickledArtifact):
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


def at_risk(frame: FeatureFrame, active_window_days: int) -> FeatureFrame:
    """The users active in the `active_window_days` up to each row's cut-off (the cut-off
    day included): the only ones who can still churn."""
    return frame.where(frame.column("days_since_last_active") < active_window_days)


def _booster(params: dict[str, Any]) -> HistGradientBoostingClassifier:
    monotone = [1 if f in RISING else 0 for f in USER_FEATURES]
    return HistGradientBoostingClassifier(**params, monotonic_cst=monotone)


@dataclass(frozen=True)
class ParamChoice:
    """The candidate chosen and every candidate's validation ROC-AUC (grid order)."""

    params: dict[str, Any]
    validation_roc_auc: list[float]
    validation_cut_offs: list[str]


def choose_params(
    inner_fit: FeatureFrame, validate: FeatureFrame, grid: tuple[dict[str, Any], ...] = PARAM_GRID
) -> ParamChoice:
    """Fit each candidate on `inner_fit`, keep the best ROC-AUC on `validate` (the first
    on a tie, the grid runs from the simplest). ROC-AUC, because calibration (fitted
    later) cannot change a ranking."""
    aucs = []
    for params in grid:
        booster = _booster(params).fit(inner_fit.x, inner_fit.churned)
        aucs.append(float(roc_auc_score(validate.churned, booster.predict_proba(validate.x)[:, 1])))
    cut_offs = sorted({str(d) for d in validate.as_of})
    return ParamChoice(dict(grid[int(np.argmax(aucs))]), aucs, cut_offs)


def fit_churn_model(
    fit: FeatureFrame, calibrate: FeatureFrame, params: dict[str, Any]
) -> ChurnModel:
    booster = _booster(params).fit(fit.x, fit.churned)
    calibrated = CalibratedClassifierCV(FrozenEstimator(booster), method="sigmoid")
    calibrated.fit(calibrate.x, calibrate.churned)
    return ChurnModel(calibrated, np.median(fit.x, axis=0))


@dataclass
class RecencyBaseline:
    """P(churn) from recency alone, recalibrated on the model's calibration cut-off."""

    regression: CalibratedClassifierCV

    @staticmethod
    def _x(frame: FeatureFrame) -> NDArray[np.float64]:
        return np.log1p(frame.column("days_since_last_active")).reshape(-1, 1)

    @classmethod
    def fit(cls, frame: FeatureFrame, calibrate: FeatureFrame) -> RecencyBaseline:
        regression = LogisticRegression().fit(cls._x(frame), frame.churned)
        calibrated = CalibratedClassifierCV(FrozenEstimator(regression), method="sigmoid")
        return cls(calibrated.fit(cls._x(calibrate), calibrate.churned))

    def probability(self, frame: FeatureFrame) -> NDArray[np.float64]:
        p: NDArray[np.float64] = self.regression.predict_proba(self._x(frame))[:, 1]
        return p


def _auc_rows(truth: NDArray[np.bool_], score: NDArray[np.float64]) -> NDArray[np.float64]:
    """ROC-AUC of each row of `score` against the same row of `truth` (Mann-Whitney with
    mid-ranks for ties); NaN for a row with a single class."""
    ranks = rankdata(score, axis=1)
    pos = truth.sum(axis=1).astype(np.float64)
    neg = truth.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc: NDArray[np.float64] = ((ranks * truth).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    return auc


def paired_auc_interval(
    truth: NDArray[np.bool_],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """ROC-AUC of `a` minus that of `b` on the same users, and its paired bootstrap 95 %
    interval (users resampled with replacement, both scores on each resample)."""
    n = len(truth)
    difference = float(roc_auc_score(truth, a) - roc_auc_score(truth, b))
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, samples, 100):  # bounded memory: 100 resamples at a time
        idx = rng.integers(0, n, (min(100, samples - start), n))
        t = truth[idx]
        chunks.append(_auc_rows(t, a[idx]) - _auc_rows(t, b[idx]))
    draws = np.concatenate(chunks)
    draws = draws[np.isfinite(draws)]
    lo, hi = np.percentile(draws, [2.5, 97.5]) if len(draws) else (np.nan, np.nan)
    return {"difference": difference, "low": float(lo), "high": float(hi)}


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
