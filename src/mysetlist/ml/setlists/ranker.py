"""The setlist ranker: one logistic model learned across artists, adjusted per artist.

- Across artists: L2-penalised logistic regression on every (earlier show, song) pair of
  every artist, over the song signals, the artist's style (rotation rate, set-length spread,
  tour position, history length, base rate) and signal x style interactions, so a fixed
  tour set learns to trust the last show while a heavy rotator learns to avoid repeating it.
  The penalty is chosen on validation shows: the most recent fifth of the training shows,
  the model fitted on the shows before them (`tune_and_fit`).
- Per artist: a small logistic correction (intercept and a few signals) on top of the
  cross-artist logit, shrunk towards zero with a Gaussian prior whose per-coefficient
  variance is learned by empirical Bayes (method of moments over the training artists'
  unshrunk corrections), not set by hand. Five shows leave the cross-artist model in
  charge; hundreds let the artist's own habits move it.
- The set size: the number of top songs that maximises the expected F1 given the predicted
  probabilities (`best_set_size`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from mysetlist.ml.setlists.signals import FEATURES, Target

# Hyper-parameters (fixed here; the penalty is tuned on validation shows in `tune_and_fit`).
L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)  # total penalty on the standardised weights
VALIDATION_SHARE = 0.2  # of the training shows, the most recent: the penalty's validation
MAX_TRAINING_ROWS = 250_000  # the most recent (show, song) pairs; older habits matter less
INTERACT_SIGNALS = (
    "played_last_show",
    "played_last_3",
    "decayed_share_h1",
    "decayed_share_h3",
    "decayed_share_h10",
    "decayed_share_h30",
    "shows_since_played_log",
    "tour_share",
    "debut_recency",
    "same_city_repeat",
)
INTERACT_STYLES = ("rotation_rate", "set_share", "history_log", "tour_position_log")
# The per-artist correction's columns (then an intercept).
ARTIST_SIGNALS = (
    "played_last_show",
    "decayed_share_h3",
    "decayed_share_h10",
    "tour_share",
    "shows_since_played_log",
)
EB_MIN_ROWS = 60  # an artist's rows before its unshrunk correction informs the prior
TAU2_BOUNDS = (1e-4, 4.0)

_COL = {name: i for i, name in enumerate(FEATURES)}
_PAIRS = [(_COL[s], _COL[t]) for s in INTERACT_SIGNALS for t in INTERACT_STYLES]
_ARTIST_COLS = [_COL[s] for s in ARTIST_SIGNALS]
N_DESIGN = len(FEATURES) + len(_PAIRS)
N_ARTIST = len(ARTIST_SIGNALS) + 1
_FALLBACK_COLUMN = _COL["decayed_share_h3"]


def design(signals: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signals plus their signal x style interactions."""
    left = signals[:, [a for a, _ in _PAIRS]]
    right = signals[:, [b for _, b in _PAIRS]]
    return np.hstack([signals, left * right])


def artist_design(signals: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.hstack([signals[:, _ARTIST_COLS], np.ones((signals.shape[0], 1))])


@dataclass(frozen=True)
class ArtistAdjustment:
    theta: NDArray[np.float64] = field(default_factory=lambda: np.zeros(N_ARTIST))


@dataclass(frozen=True)
class CrossArtistRanker:
    mean: NDArray[np.float64]  # standardisation of the design columns
    scale: NDArray[np.float64]
    weights: NDArray[np.float64]  # N_DESIGN standardised weights, then the intercept
    tau2: NDArray[np.float64]  # the per-artist correction's prior variances (EB)
    l2: float
    training_rows: int

    def logits(self, signals: NDArray[np.float64]) -> NDArray[np.float64]:
        z = (design(signals) - self.mean) / self.scale
        result: NDArray[np.float64] = z @ self.weights[:-1] + self.weights[-1]
        return result

    def probabilities(
        self, signals: NDArray[np.float64], adjustment: ArtistAdjustment | None = None
    ) -> NDArray[np.float64]:
        z = self.logits(signals)
        if adjustment is not None:
            z = z + artist_design(signals) @ adjustment.theta
        result: NDArray[np.float64] = expit(z)
        return result

    def contributions(self, signals: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per candidate and signal, its part of the logit (its interactions included),
        relative to the average candidate: what the reasons are read from."""
        z = (design(signals) - self.mean) / self.scale
        z = z - z.mean(axis=0, keepdims=True)
        parts = z * self.weights[:-1]
        out: NDArray[np.float64] = parts[:, : len(FEATURES)].copy()
        for k, (a, _) in enumerate(_PAIRS):
            out[:, a] += parts[:, len(FEATURES) + k]
        return out

    def fit_artist(self, targets: Sequence[Target]) -> ArtistAdjustment:
        """The artist's correction from its earlier shows, shrunk by the EB prior."""
        usable = [t for t in targets if t.songs.size]
        if not usable:
            return ArtistAdjustment()
        signals = np.vstack([t.signals for t in usable])
        y = np.concatenate([t.played for t in usable]).astype(np.float64)
        theta, _ = _newton(artist_design(signals), y, self.logits(signals), 1.0 / self.tau2)
        return ArtistAdjustment(theta)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES), "interactions": [list(p) for p in _PAIRS],
            "artist_signals": list(ARTIST_SIGNALS), "mean": self.mean.tolist(),
            "scale": self.scale.tolist(), "weights": self.weights.tolist(),
            "tau2": self.tau2.tolist(), "l2": self.l2, "training_rows": self.training_rows,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrossArtistRanker:
        if data.get("features") != list(FEATURES) or data.get("artist_signals") != list(
            ARTIST_SIGNALS
        ):
            raise ValueError("the stored ranker was trained on other signals")
        return cls(
            np.asarray(data["mean"]), np.asarray(data["scale"]), np.asarray(data["weights"]),
            np.asarray(data["tau2"]), float(data["l2"]), int(data["training_rows"]),
        )  # fmt: skip


def _newton(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    offset: NDArray[np.float64] | float,
    precision: NDArray[np.float64],
    start: NDArray[np.float64] | None = None,
    iterations: int = 30,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """MAP logistic regression with a N(0, 1/precision) prior, by Newton's method (a few
    steps on these well-conditioned, penalised problems): (theta, Hessian)."""
    theta = np.zeros(x.shape[1]) if start is None else start.copy()
    hessian = np.diag(precision)
    for _ in range(iterations):
        p = expit(offset + x @ theta)
        grad = x.T @ (p - y) + precision * theta
        hessian = (x.T * (p * (1.0 - p))) @ x + np.diag(precision)
        step = np.linalg.solve(hessian + 1e-9 * np.eye(x.shape[1]), grad)
        largest = float(np.max(np.abs(step)))
        if largest > 2.0:  # damped: a huge first step can overshoot on separable data
            step *= 2.0 / largest
        theta = theta - step
        if largest < 1e-6:
            break
    return theta, hessian


def _stack(
    targets: Sequence[Target],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    usable = [t for t in targets if t.songs.size]
    if not usable:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    return (
        np.vstack([t.signals for t in usable]),
        np.concatenate([t.played for t in usable]).astype(np.float64),
    )


def _fit_global(
    signals: NDArray[np.float64],
    y: NDArray[np.float64],
    l2: float,
    start: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    x = design(signals)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    z = np.hstack([z, np.ones((z.shape[0], 1))])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    if start is None:
        base = float(np.clip(y.mean(), 1e-4, 1 - 1e-4))
        start = np.zeros(z.shape[1])
        start[-1] = np.log(base / (1 - base))
    weights, _ = _newton(z, y, 0.0, penalty, start, iterations=25)
    return weights, mean, scale


def _eb_prior(
    ranker: CrossArtistRanker, artists: Sequence[Sequence[Target]]
) -> NDArray[np.float64]:
    """Per-coefficient prior variance of the artist corrections: the spread of the
    artists' nearly unshrunk corrections minus their own estimation noise."""
    estimates, noise = [], []
    weak = np.full(N_ARTIST, 1e-2)
    for targets in artists:
        signals, y = _stack(targets)
        if y.size < EB_MIN_ROWS or y.min() == y.max():
            continue
        theta, hessian = _newton(artist_design(signals), y, ranker.logits(signals), weak)
        estimates.append(theta)
        noise.append(np.diag(np.linalg.inv(hessian)))
    if len(estimates) < 3:
        return np.full(N_ARTIST, TAU2_BOUNDS[0] * 10)
    tau2 = np.mean(np.square(estimates), axis=0) - np.mean(noise, axis=0)
    clipped: NDArray[np.float64] = np.clip(tau2, *TAU2_BOUNDS)
    return clipped


def fit_cross_artist(
    artists: Sequence[Sequence[Target]],
    l2: float,
    start: NDArray[np.float64] | None = None,
) -> CrossArtistRanker:
    """Fit on the given targets of every artist (each list: one artist's shows, oldest
    first); keeps the most recent `MAX_TRAINING_ROWS` pairs."""
    dated = sorted(
        ((t.date, a, t) for a, targets in enumerate(artists) for t in targets if t.songs.size),
        key=lambda item: (item[0], item[1], item[2].index),
    )
    kept: list[Target] = []
    rows = 0
    for _, _, target in reversed(dated):
        if rows >= MAX_TRAINING_ROWS:
            break
        kept.append(target)
        rows += target.songs.size
    signals, y = _stack(kept)
    if y.size == 0:
        raise ValueError("no earlier shows to learn from")
    weights, mean, scale = _fit_global(signals, y, l2, start)
    ranker = CrossArtistRanker(mean, scale, weights, np.ones(N_ARTIST), l2, int(y.size))
    return CrossArtistRanker(mean, scale, weights, _eb_prior(ranker, artists), l2, int(y.size))


def _log_loss(ranker: CrossArtistRanker, validation: Sequence[Target]) -> float:
    signals, y = _stack(validation)
    p = np.clip(ranker.probabilities(signals), 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass(frozen=True)
class Tuning:
    l2: float
    validation_log_loss: dict[float, float]
    validation_shows: int
    validation_from: date | None = None  # the first validation date
    validation_ranker: CrossArtistRanker | None = None  # the chosen penalty, pre-validation fit


def tune_and_fit(
    artists: Sequence[Sequence[Target]], l2_grid: Sequence[float] = L2_GRID
) -> tuple[CrossArtistRanker, Tuning]:
    """Choose the penalty on validation shows (the most recent `VALIDATION_SHARE` of the
    given shows, by date, across artists; fitted on the shows before them), then refit on
    every given show with it."""
    dates = sorted(t.date for targets in artists for t in targets if t.songs.size)
    if not dates:
        raise ValueError("no earlier shows to learn from")
    cut = dates[min(len(dates) - 1, int(len(dates) * (1 - VALIDATION_SHARE)))]
    fitting = [[t for t in targets if t.date < cut] for targets in artists]
    validation = [t for targets in artists for t in targets if t.date >= cut and t.songs.size]
    losses: dict[float, float] = {}
    fitted: dict[float, CrossArtistRanker] = {}
    if validation and any(t.songs.size for targets in fitting for t in targets):
        start = None
        for l2 in l2_grid:
            candidate = fit_cross_artist(fitting, l2, start)
            start = candidate.weights
            losses[l2] = round(_log_loss(candidate, validation), 5)
            fitted[l2] = candidate
        chosen = min(losses, key=lambda l2: (losses[l2], -l2))
    else:
        chosen = l2_grid[len(l2_grid) // 2]
    tuning = Tuning(chosen, losses, len(validation), cut, fitted.get(chosen))
    return fit_cross_artist(artists, chosen), tuning


def fallback_probabilities(target: Target) -> NDArray[np.float64]:
    """Before any cross-artist ranker exists: the decayed play share (half-life 3 shows),
    pulled slightly towards one half."""
    result: NDArray[np.float64] = (target.signals[:, _FALLBACK_COLUMN] * 6 + 0.5) / 7
    return result


def calibrate_to_length(
    probabilities: NDArray[np.float64], length: float, expected_debuts: float = 0.0
) -> NDArray[np.float64]:
    """Shift every logit by one amount so the candidates' expected plays add up to the
    recent set length less the expected debuts: an artist's set length is steadier than a
    sum of independent chances, so it pins the overall level the ranking only orders."""
    goal = length - expected_debuts
    if probabilities.size == 0 or not 0 < goal < probabilities.size:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-9, 1 - 1e-9)) - np.log1p(
        -np.clip(probabilities, 1e-9, 1 - 1e-9)
    )
    low, high = -20.0, 20.0
    for _ in range(50):
        shift = (low + high) / 2
        if float(expit(logits + shift).sum()) < goal:
            low = shift
        else:
            high = shift
    result: NDArray[np.float64] = expit(logits + (low + high) / 2)
    return result


def best_set_size(probabilities: NDArray[np.float64], expected_debuts: float = 0.0) -> int:
    """The k maximising the expected F1 of the top k songs: hits ~ the sum of their
    probabilities, the songs played ~ the sum of all probabilities plus the songs never
    played before expected at this show (a first-order estimate of E[2·hits/(k+played)])."""
    if probabilities.size == 0:
        return 0
    ordered = np.sort(probabilities)[::-1]
    played = float(ordered.sum()) + expected_debuts
    k = np.arange(1, ordered.size + 1)
    expected_f1 = 2.0 * np.cumsum(ordered) / (k + played)
    return int(np.argmax(expected_f1)) + 1
