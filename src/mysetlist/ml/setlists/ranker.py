"""A logistic ranker fitted on one artist's history, shrunk towards a prior.

Maximum a posteriori logistic regression: the log loss over (earlier show, song) pairs plus
a Gaussian penalty pulling the weights towards `PRIOR_WEIGHTS`. With five past shows the
prior dominates; with hundreds the artist's own habits do, so a fixed-set touring act
learns to trust the last show while a heavy rotator learns to avoid repeating it. Later
shows count more (`recency_decay` per show), since habits drift between tours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit

from mysetlist.ml.setlists.signals import FEATURES, N_FEATURES, Target

# Prior weights, in FEATURES order, then the intercept: a recency-weighted frequency
# ranker with mild preferences for tour continuity, new songs, openers and closers, and
# against repeating the previous night's set in the same city.
PRIOR_WEIGHTS: dict[str, float] = {
    "played_last_show": 0.5,
    "recent_share_short": 1.0,
    "recent_share_medium": 2.0,
    "recent_share_long": 1.5,
    "overall_share": 0.5,
    "shows_since_played_log": -0.3,
    "streak_log": 0.2,
    "tour_share": 1.5,
    "tour_unplayed": -0.5,
    "debut_recency": 0.8,
    "same_city_repeat": -0.5,
    "opener_share": 0.3,
    "closer_share": 0.3,
}
PRIOR_INTERCEPT = -2.5


def prior_vector() -> NDArray[np.float64]:
    return np.array([*(PRIOR_WEIGHTS[name] for name in FEATURES), PRIOR_INTERCEPT])


@dataclass(frozen=True)
class RankerConfig:
    strength: float = 3.0  # precision of the Gaussian prior (per weight)
    recency_decay: float = 0.98  # weight of a training show relative to the next one


@dataclass(frozen=True)
class Ranker:
    weights: NDArray[np.float64]  # N_FEATURES + intercept

    def logits(self, signals: NDArray[np.float64]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = signals @ self.weights[:-1] + self.weights[-1]
        return result

    def probabilities(self, signals: NDArray[np.float64]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = expit(self.logits(signals))
        return result


def fit_ranker(
    targets: list[Target],
    config: RankerConfig = RankerConfig(),
    start: NDArray[np.float64] | None = None,
) -> Ranker:
    """Fit on `targets` (earlier shows, each with its candidates and what was played)."""
    prior = prior_vector()
    usable = [t for t in targets if t.songs.size]
    if not usable:
        return Ranker(prior)
    last = usable[-1].index
    # Shows whose weight has decayed below 0.1 % add nothing but time.
    horizon = int(np.log(1e-3) / np.log(config.recency_decay)) if config.recency_decay < 1 else 0
    if horizon:
        usable = [t for t in usable if last - t.index <= horizon]
    x = np.vstack([t.signals for t in usable])
    x = np.hstack([x, np.ones((x.shape[0], 1))])
    y = np.concatenate([t.played for t in usable]).astype(np.float64)
    w = np.concatenate([np.full(t.songs.size, config.recency_decay ** (last - t.index))
                        for t in usable])  # fmt: skip
    precision = np.full(N_FEATURES + 1, config.strength)
    precision[-1] = config.strength * 0.1  # the intercept follows the data more freely

    def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        z = x @ theta
        # log(1 + e^z) - y z, computed stably
        loss = float(w @ (np.logaddexp(0.0, z) - y * z))
        grad = x.T @ (w * (expit(z) - y))
        diff = theta - prior
        loss += 0.5 * float(precision @ (diff * diff))
        grad = grad + precision * diff
        return loss, grad

    result = minimize(
        objective, prior if start is None else start, jac=True, method="L-BFGS-B",
        options={"maxiter": 200},
    )  # fmt: skip
    return Ranker(np.asarray(result.x, dtype=np.float64))
