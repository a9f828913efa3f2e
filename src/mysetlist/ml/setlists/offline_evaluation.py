"""Rolling-origin evaluation of the setlist model against four baselines.

Per artist, shows in date order; the last 20 % are test shows and the last 20 % of the
shows before them are validation shows (the baselines' windows are tuned on them). Each test
show is predicted from earlier shows only: its signals come from `build_signals`' forward
pass over the artist's earlier shows, and the cross-artist ranker it uses was fitted on
shows of every artist dated before it (refitted at `CHECKPOINTS` dates through the test
period; its penalty chosen on the most recent fifth of the shows before the first one).

Every predictor shows a set of its own size, and the headline metric scores that set:
F1 = 2·hits / (|predicted| + |played|), as the product shows it and as fans are scored.
`f1_at_n` ranks with the true number of songs N given (precision@N = recall@N), and NDCG@N
the order. Baselines (each padded to its length by play count, ties to the most recent):

- `last_show`: the previous setlist, its own length;
- `recent_frequency`: play count over the last k shows (k tuned on validation shows);
- `decayed_frequency`: plays weighted 0.5^(age / h), half-life h tuned on validation shows;
- `tour_frequency`: share of the current tour's earlier shows, backed off to decayed frequency;

the frequency baselines at the recent (same-tour) set length. The model shows the number of
songs that maximises its expected F1. Paired bootstrap 95 % intervals over test shows give
the uncertainty of every comparison of the model with a baseline (and, resampling whole
artists, of the comparison with the best one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from numpy.typing import NDArray

from mysetlist.ml.setlists.ranker import (
    ArtistAdjustment,
    CrossArtistRanker,
    best_set_size,
    calibrate_to_length,
    fallback_probabilities,
    fit_cross_artist,
    tune_and_fit,
)
from mysetlist.ml.setlists.setlist_history import PlayedShow, UpcomingShow
from mysetlist.ml.setlists.signals import SignalTable, Target, build_signals
from mysetlist.ml.setlists.signals import predicted_length as recent_length

BASELINES = ("last_show", "recent_frequency", "decayed_frequency", "tour_frequency")
MODELS = (*BASELINES, "model")
METRICS = ("f1", "f1_at_n", "ndcg")
TEST_SHARE = 0.2
K_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 60, 100, 1_000_000)
DEFAULT_K = 5
HALF_LIFE_GRID = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 100.0)
DEFAULT_HALF_LIFE = 5.0
CHECKPOINTS = 5  # cross-artist refits through the test period
BOOTSTRAP_SAMPLES = 2000


class NothingToEvaluate(ValueError):
    """No artist has two or more shows: no show can be predicted from an earlier one."""


def score_ranking(
    ranked: Sequence[Hashable], truth: frozenset[Hashable], n: int, length: int
) -> dict[str, float]:
    """F1 of the top `length` songs (2·hits / (shown + |truth|), never more shown than
    ranked), F1@n and NDCG@n of `ranked` (most likely first) against `truth`, n songs
    played."""
    if n == 0 or not truth:
        return dict.fromkeys(METRICS, 0.0)
    hits = [1.0 if song in truth else 0.0 for song in ranked[:n]]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(n, len(truth))))
    shown = ranked[:length]
    return {
        "f1": 2.0 * sum(1 for song in shown if song in truth) / (len(shown) + len(truth)),
        "f1_at_n": sum(hits) / n,
        "ndcg": dcg / idcg,
    }


def first_test_index(n_shows: int) -> int:
    """Index of the first test show (the last 20 %, at least one, never show 0)."""
    n_test = max(1, round(TEST_SHARE * n_shows))
    return max(1, n_shows - n_test)


def first_validation_index(first_test: int) -> int:
    """Index of the first validation show: the last 20 % of the shows before the test
    period (at least one), never show 0; equal to `first_test` when there is none."""
    if first_test < 2:
        return first_test
    return max(1, first_test - max(1, round(TEST_SHARE * first_test)))


@dataclass
class _PlayedMatrix:
    played: NDArray[np.bool_]  # (shows, vocabulary)
    order: list[tuple[int, ...]]  # each show's songs as vocabulary indices, in order

    @classmethod
    def of(cls, history: Sequence[PlayedShow], table: SignalTable) -> _PlayedMatrix:
        index = {song: i for i, song in enumerate(table.vocabulary)}
        played = np.zeros((len(history), len(table.vocabulary)), dtype=bool)
        order = []
        for j, show in enumerate(history):
            songs = tuple(index[s] for s in show.songs)
            played[j, list(songs)] = True
            order.append(songs)
        return cls(played, order)

    def last_played(self, t: int) -> NDArray[np.int64]:
        seen = self.played[:t]
        result: NDArray[np.int64] = np.where(
            seen.any(axis=0), t - 1 - np.argmax(seen[::-1], axis=0), -1
        )
        return result

    def by_score(self, t: int, *scores: NDArray[np.float64]) -> list[int]:
        """Songs played before show t, by the scores (first decides), then the most recent."""
        candidates = np.flatnonzero(self.played[:t].any(axis=0))
        last = self.last_played(t)
        keys = [-last[candidates], *(-s[candidates] for s in reversed(scores))]
        return [int(i) for i in candidates[np.lexsort(keys)]]

    def decayed(self, t: int, half_life: float) -> NDArray[np.float64]:
        weights = 0.5 ** (np.arange(t - 1, -1, -1) / half_life)
        result: NDArray[np.float64] = weights @ self.played[:t]
        return result


def _padded(ranked: list[int], fallback: list[int]) -> list[int]:
    seen = set(ranked)
    return ranked + [s for s in fallback if s not in seen]


def rank_frequency(matrix: _PlayedMatrix, t: int) -> list[int]:
    """Every song played before show t by play count, ties to the most recent (the
    padding of every baseline)."""
    return matrix.by_score(t, matrix.played[:t].sum(axis=0).astype(np.float64))


def rank_last_show(matrix: _PlayedMatrix, t: int) -> list[int]:
    return _padded([*matrix.order[t - 1]], rank_frequency(matrix, t)) if t > 0 else []


def rank_recent_frequency(matrix: _PlayedMatrix, t: int, k: int) -> list[int]:
    window = matrix.played[max(0, t - k) : t].sum(axis=0).astype(np.float64)
    total = matrix.played[:t].sum(axis=0).astype(np.float64)
    return matrix.by_score(t, window, total)


def rank_decayed_frequency(matrix: _PlayedMatrix, t: int, half_life: float) -> list[int]:
    return matrix.by_score(t, matrix.decayed(t, half_life))


def rank_tour_frequency(
    matrix: _PlayedMatrix, history: Sequence[PlayedShow], t: int, half_life: float
) -> list[int]:
    tour = history[t].tour
    same = [j for j in range(t) if tour is not None and history[j].tour == tour]
    in_tour = matrix.played[same].sum(axis=0).astype(np.float64)
    return matrix.by_score(t, in_tour, matrix.decayed(t, half_life))


@dataclass
class Prediction:
    ranked: list[int]  # vocabulary indices, most likely first
    length: int  # how many of them are shown


@dataclass
class _Artist:
    name: str
    history: Sequence[PlayedShow]
    table: SignalTable
    matrix: _PlayedMatrix
    first_validation: int
    first_test: int
    k: int = DEFAULT_K
    half_life: float = DEFAULT_HALF_LIFE
    tuned: bool = False
    predictions: dict[int, dict[str, Prediction]] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, history: Sequence[PlayedShow]) -> _Artist:
        table = build_signals(history)
        first_test = first_test_index(len(history))
        return cls(name, history, table, _PlayedMatrix.of(history, table),
                   first_validation_index(first_test), first_test)  # fmt: skip

    def upcoming(self, t: int) -> UpcomingShow:
        show = self.history[t]
        return UpcomingShow(show.show_id, show.date, show.city, show.tour)

    def baselines(self, t: int, k: int, half_life: float) -> dict[str, Prediction]:
        m, history = self.matrix, self.history
        length = recent_length(history[:t], self.upcoming(t))
        return {
            "last_show": Prediction(rank_last_show(m, t), len(m.order[t - 1])),
            "recent_frequency": Prediction(rank_recent_frequency(m, t, k), length),
            "decayed_frequency": Prediction(rank_decayed_frequency(m, t, half_life), length),
            "tour_frequency": Prediction(rank_tour_frequency(m, history, t, half_life), length),
        }

    def tune(self) -> None:
        """k and the half-life with the best mean F1 over the validation shows."""
        shows = range(self.first_validation, self.first_test)
        if not shows:
            return
        self.tuned = True
        m = self.matrix

        def mean_f1(rank: Callable[[int], list[int]]) -> float:
            scores = []
            for t in shows:
                length = recent_length(self.history[:t], self.upcoming(t))
                truth = self.table.targets[t].true_songs
                scores.append(score_ranking(rank(t), truth, len(truth), length)["f1"])  # type: ignore[arg-type]
            return float(np.mean(scores))

        best = -1.0
        for k in K_GRID:
            f1 = mean_f1(lambda t, k=k: rank_recent_frequency(m, t, k))  # type: ignore[misc]
            if f1 > best + 1e-12:
                self.k, best = k, f1
            if k >= self.first_test:  # larger windows see the same shows
                break
        best = -1.0
        for h in HALF_LIFE_GRID:
            f1 = mean_f1(lambda t, h=h: rank_decayed_frequency(m, t, h))  # type: ignore[misc]
            if f1 > best + 1e-12:
                self.half_life, best = h, f1


def _model_prediction(
    ranker: CrossArtistRanker | None, adjustment: ArtistAdjustment | None, target: Target
) -> Prediction:
    if target.songs.size == 0:
        return Prediction([], 0)
    if ranker is None:
        p = fallback_probabilities(target)
    else:
        p = ranker.probabilities(target.signals, adjustment)
    order = np.argsort(-p, kind="stable")
    p = calibrate_to_length(p, target.recent_length, target.expected_debuts)
    return Prediction([int(i) for i in target.songs[order]],
                      best_set_size(p, target.expected_debuts))  # fmt: skip


def _checkpoints(dates: Sequence[date], count: int) -> list[date]:
    ordered = sorted(dates)
    return sorted({ordered[(i * len(ordered)) // count] for i in range(count)})


def predict_with_model(artists: Sequence[_Artist], checkpoints: int = CHECKPOINTS) -> float | None:
    """Fill every test show's `model` prediction; returns the tuned penalty (None when no
    show precedes the first checkpoint)."""
    tests = [a.table.targets[t].date for a in artists for t in range(a.first_test, len(a.history))]
    if not tests:
        return None
    cuts = _checkpoints(tests, checkpoints)
    l2: float | None = None
    rankers: list[CrossArtistRanker | None] = []
    start = None
    for cut in cuts:
        training = [[t for t in a.table.targets[1:] if t.date < cut] for a in artists]
        if not any(t.songs.size for targets in training for t in targets):
            rankers.append(None)
            continue
        if l2 is None:
            ranker, tuning = tune_and_fit(training)
            l2 = tuning.l2
        else:
            ranker = fit_cross_artist(training, l2, start)
        start = ranker.weights
        rankers.append(ranker)
    for artist in artists:
        adjustment: ArtistAdjustment | None = None
        fitted: tuple[int, int] | None = None  # (checkpoint, show index) of the adjustment
        for t in range(artist.first_test, len(artist.history)):
            target = artist.table.targets[t]
            # The latest checkpoint on or before the show (the first is the earliest test day).
            c = max(k for k, cut in enumerate(cuts) if cut <= target.date)
            current = rankers[c]
            # Refit the artist's correction with a new ranker, or once 5 % more shows have
            # been played (a long history barely moves with one more show).
            if current is not None and (
                fitted is None or fitted[0] != c or t - fitted[1] >= max(1, t // 20)
            ):
                adjustment = current.fit_artist(artist.table.targets[1:t])
                fitted = (c, t)
            artist.predictions[t]["model"] = _model_prediction(
                current, adjustment if current is not None else None, target
            )
    return l2


def rolling_predictions(
    setlists: Mapping[str, Sequence[PlayedShow]], checkpoints: int = CHECKPOINTS
) -> dict[str, dict[str, dict[str, tuple[list[str], int]]]]:
    """Per artist (2+ shows) and test show id: every predictor's ranked song names and
    shown length, each made from earlier shows only."""
    artists = _prepare(setlists)
    predict_with_model(artists, checkpoints)
    return {
        a.name: {
            a.history[t].show_id: {
                name: ([a.table.vocabulary[i] for i in p.ranked], p.length)
                for name, p in a.predictions[t].items()
            }
            for t in sorted(a.predictions)
        }
        for a in artists
    }


def _prepare(
    setlists: Mapping[str, Sequence[PlayedShow]], progress: Callable[[str], None] | None = None
) -> list[_Artist]:
    artists = []
    for name in sorted(setlists):
        if len(setlists[name]) >= 2:
            artist = _Artist.of(name, setlists[name])
            artist.tune()
            for t in range(artist.first_test, len(artist.history)):
                artist.predictions[t] = artist.baselines(t, artist.k, artist.half_life)
            artists.append(artist)
        if progress is not None:
            progress(name)
    return artists


def _means(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {m: round(float(np.mean([r[m] for r in rows])), 4) if rows else 0.0 for m in METRICS}


def paired_interval(
    difference: NDArray[np.float64], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> list[float]:
    """Paired bootstrap 95 % interval of the mean of per-show differences."""
    if difference.size == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 200):  # bounded memory on long histories
        chunk = min(200, samples - start)
        picks = rng.integers(0, difference.size, size=(chunk, difference.size))
        means[start : start + chunk] = difference[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def artist_clustered_interval(
    difference: NDArray[np.float64],
    artist: NDArray[np.int64],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> list[float]:
    """The same interval resampling whole artists (their test shows are not independent):
    wider, and the honest one when a few artists dominate the test shows."""
    if difference.size == 0:
        return [0.0, 0.0]
    sums = np.bincount(artist, weights=difference)
    counts = np.bincount(artist).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, sums.size, size=(samples, sums.size))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def evaluate(
    setlists: Mapping[str, Sequence[PlayedShow]],
    progress: Callable[[str], None] | None = None,
    checkpoints: int = CHECKPOINTS,
) -> dict[str, object]:
    """The evaluation table: `{"overall", "artists", "intervals", "best_baseline", ...}`
    (see the CLI); raises NothingToEvaluate when no artist has two or more shows."""
    artists = _prepare(setlists, progress)
    if not artists:
        raise NothingToEvaluate(
            "no artist has two or more shows, so no show can be predicted from an earlier "
            "one: give each artist at least two dated setlists"
        )
    l2 = predict_with_model(artists, checkpoints)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
    artist_of_row: list[int] = []
    length_error: dict[str, list[int]] = {"model": [], "recent_length": []}
    out_artists: dict[str, object] = {}
    for a in artists:
        scores: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
        for t, predictions in sorted(a.predictions.items()):
            truth = frozenset(a.table.targets[t].true_songs)
            n = a.table.targets[t].true_length
            for name, p in predictions.items():
                scores[name].append(score_ranking(p.ranked, truth, n, p.length))  # type: ignore[arg-type]
            length_error["model"].append(abs(predictions["model"].length - n))
            length_error["recent_length"].append(abs(predictions["decayed_frequency"].length - n))
        for name in MODELS:
            rows[name].extend(scores[name])
        artist_of_row += [len(out_artists)] * len(scores["model"])
        entry: dict[str, object] = {
            "shows": len(a.history),
            "test_shows": len(a.history) - a.first_test,
            "validation_shows": a.first_test - a.first_validation,
            "recent_frequency_k": a.k,
            "decay_half_life": a.half_life,
            "tuned": a.tuned,
            "models": {name: _means(scores[name]) for name in MODELS},
        }
        if not a.tuned:
            entry["note"] = (
                "no validation shows: recent_frequency k and the decay half-life are "
                "defaults, not tuned"
            )
        out_artists[a.name] = entry
    for name in sorted(setlists):
        if len(setlists[name]) < 2:
            out_artists[name] = {
                "shows": len(setlists[name]),
                "test_shows": 0,
                "note": "a single show: nothing earlier to predict it from, not scored",
            }
    overall = {name: _means(rows[name]) for name in MODELS}
    best = max(BASELINES, key=lambda name: overall[name]["f1"])
    f1 = {name: np.array([r["f1"] for r in rows[name]]) for name in MODELS}
    at_n = {name: np.array([r["f1_at_n"] for r in rows[name]]) for name in MODELS}
    intervals = {
        "model_minus_best_baseline": paired_interval(f1["model"] - f1[best]),
        "model_minus_best_baseline_f1_at_n": paired_interval(at_n["model"] - at_n[best]),
        "model_minus_best_baseline_by_artist": artist_clustered_interval(
            f1["model"] - f1[best], np.array(artist_of_row, dtype=np.int64)
        ),
        **{f"model_minus_{name}": paired_interval(f1["model"] - f1[name]) for name in BASELINES},
    }
    return {
        "overall": overall,
        "artists": dict(sorted(out_artists.items())),
        "intervals": intervals,
        "best_baseline": best,
        "test_shows": len(rows["model"]),
        "single_show_artists": sorted(n for n in setlists if len(setlists[n]) < 2),
        "untuned_artists": sorted(a.name for a in artists if not a.tuned),
        "mean_length_error": {k: round(float(np.mean(v)), 3) for k, v in length_error.items()},
        "cross_artist_l2": l2,
    }
