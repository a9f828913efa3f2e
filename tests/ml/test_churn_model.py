"""The churn model's parts that need no database: who is at risk, the recalibrated
recency baseline, the paired bootstrap interval of an ROC-AUC difference, the engagement
forecast's paired MAE interval, and the choice of hyper-parameters on validation rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from mysetlist.ml.churn.model import (
    RecencyBaseline,
    _auc_rows,
    _booster,
    at_risk,
    choose_params,
    paired_auc_interval,
)
from mysetlist.ml.engagement.model import baseline_forecasts, paired_mae_interval
from mysetlist.ml.features.training_data import USER_FEATURES, FeatureFrame

RECENCY = USER_FEATURES.index("days_since_last_active")


def _frame(x: NDArray[np.float64], churned: NDArray[np.bool_]) -> FeatureFrame:
    n = len(x)
    return FeatureFrame(
        as_of=np.full(n, np.datetime64("2026-01-01", "D")),
        user_ids=[f"u{i}" for i in range(n)],
        x=x,
        churned=churned,
        engagement_next_7=np.zeros(n),
    )


def _recency_world(rng: np.random.Generator, n: int, shift: float) -> FeatureFrame:
    """Churn more likely the longer the silence; `shift` moves the whole rate."""
    x = np.zeros((n, len(USER_FEATURES)))
    x[:, RECENCY] = rng.integers(0, 14, n)
    p = 1 / (1 + np.exp(-(0.4 * x[:, RECENCY] - 4 + shift)))
    return _frame(x, rng.random(n) < p)


def test_only_users_active_in_the_window_are_at_risk() -> None:
    x = np.zeros((4, len(USER_FEATURES)))
    x[:, RECENCY] = [0, 13, 14, 40]
    kept = at_risk(_frame(x, np.array([False, True, True, True])), 14)
    assert kept.user_ids == ["u0", "u1"]


def test_the_baseline_is_recalibrated_on_the_calibration_rows() -> None:
    rng = np.random.default_rng(1)
    # Fitted where half churn, calibrated and judged where few do: without the second
    # step its probabilities would stay near the fitting rows' rate.
    fit = _recency_world(rng, 4000, shift=2.0)
    later = _recency_world(rng, 4000, shift=-1.0)
    assert fit.churned.mean() > 2 * later.churned.mean()
    baseline = RecencyBaseline.fit(fit, later)
    assert baseline.probability(later).mean() == pytest.approx(later.churned.mean(), abs=0.01)


def test_the_rank_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(2)
    truth = rng.random((5, 300)) < 0.3
    score = rng.integers(0, 10, (5, 300)).astype(float)  # many ties
    expected = [roc_auc_score(t, s) for t, s in zip(truth, score, strict=True)]
    assert _auc_rows(truth, score) == pytest.approx(expected)


def test_the_paired_interval_covers_the_difference_and_excludes_zero_only_when_it_should() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(800) < 0.2
    good = truth + rng.normal(0, 0.8, 800)  # informative
    noise = rng.normal(0, 1, 800)  # uninformative
    better = paired_auc_interval(truth, good, noise)
    assert better["difference"] == pytest.approx(
        roc_auc_score(truth, good) - roc_auc_score(truth, noise)
    )
    assert 0 < better["low"] < better["difference"] < better["high"]
    same = paired_auc_interval(truth, good, good + 1.0)  # same ranking: no difference at all
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}
    close = paired_auc_interval(truth, good, good + rng.normal(0, 0.05, 800))
    assert close["low"] < 0 < close["high"]


def test_the_engagement_interval_is_of_the_mean_error_difference() -> None:
    rng = np.random.default_rng(4)
    truth = rng.exponential(0.05, 500)
    model = truth + rng.normal(0, 0.01, 500)
    zero = baseline_forecasts(_engagement_frame(500))["zero"]
    got = paired_mae_interval(truth, model, zero)
    assert got["difference"] == pytest.approx(np.abs(truth - model).mean() - np.abs(truth).mean())
    assert got["low"] < got["difference"] < got["high"] < 0


def _engagement_frame(n: int) -> FeatureFrame:
    return _frame(np.ones((n, len(USER_FEATURES))), np.zeros(n, dtype=bool))


def test_the_engagement_baselines_are_last_week_the_28_day_mean_and_zero() -> None:
    frame = _engagement_frame(3)
    frame.x[:, USER_FEATURES.index("engagement_7")] = [0.1, 0.2, 0.3]
    frame.x[:, USER_FEATURES.index("engagement_28")] = [0.4, 0.5, 0.6]
    got = baseline_forecasts(frame)
    assert list(got["last_week"]) == [0.1, 0.2, 0.3]
    assert list(got["mean_28"]) == [0.4, 0.5, 0.6]
    assert list(got["zero"]) == [0.0, 0.0, 0.0]


def test_hyper_parameters_are_the_candidate_best_on_the_validation_rows() -> None:
    rng = np.random.default_rng(5)
    inner, validate = _recency_world(rng, 1500, 0.0), _recency_world(rng, 1500, 0.0)
    tiny: dict[str, Any] = {"max_iter": 1, "max_depth": 2, "learning_rate": 0.01,
                            "early_stopping": False, "random_state": 0}  # fmt: skip
    deep: dict[str, Any] = {**tiny, "max_iter": 200, "max_depth": None, "learning_rate": 0.3,
                            "min_samples_leaf": 2}  # fmt: skip
    choice = choose_params(inner, validate, (tiny, deep))
    # Each candidate fitted on the inner rows and judged on the validation rows only.
    expected = [
        roc_auc_score(validate.churned,
                      _booster(c).fit(inner.x, inner.churned).predict_proba(validate.x)[:, 1])
        for c in (tiny, deep)
    ]  # fmt: skip
    assert choice.validation_roc_auc == pytest.approx(expected)
    assert choice.params == (tiny, deep)[int(np.argmax(expected))]
    assert choice.validation_cut_offs == ["2026-01-01"]
