"""Rolling-origin evaluation of setlist predictors against two baselines.

Per artist, shows in date order; the last 20 % are test shows. Each test show is predicted
from every earlier show only (its signals come from `build_signals`' forward pass, and the
model is refitted on the targets before it). A prediction is the top N songs, N the show's
true number of distinct songs, so F1@N equals precision@N and recall@N. Metrics: F1@N,
NDCG@N (binary relevance) and recall@10, per artist and over all test shows.

Baselines: `last_show` (the previous setlist, in its order) and `recent_frequency` (play
count over the last k shows, ties to the most recently played; k tuned on the shows before
the test period, the same rolling way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mysetlist.ml.setlists.ranker import Ranker, RankerConfig, fit_ranker
from mysetlist.ml.setlists.setlist_history import PlayedShow
from mysetlist.ml.setlists.signals import SignalTable, Target, build_signals

MODELS = ("last_show", "recent_frequency", "model")
METRICS = ("f1", "ndcg", "recall@10")
TEST_SHARE = 0.2
K_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 60, 100, 1_000_000)
DEFAULT_K = 5


def score_ranking(
    ranked: Sequence[Hashable], truth: frozenset[Hashable], n: int
) -> dict[str, float]:
    """F1@n, NDCG@n and recall@10 of `ranked` (most likely first) against `truth`."""
    if n == 0 or not truth:
        return dict.fromkeys(METRICS, 0.0)
    top = ranked[:n]
    hits = [1.0 if song in truth else 0.0 for song in top]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(n, len(truth))))
    return {
        "f1": sum(hits) / n,
        "ndcg": dcg / idcg,
        "recall@10": sum(1 for song in ranked[:10] if song in truth) / len(truth),
    }


def first_test_index(n_shows: int) -> int:
    """Index of the first test show (the last 20 %, at least one, never show 0)."""
    n_test = max(1, round(TEST_SHARE * n_shows))
    return max(1, n_shows - n_test)


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


def rank_last_show(matrix: _PlayedMatrix, t: int) -> list[int]:
    return [*matrix.order[t - 1]] if t > 0 else []


def rank_recent_frequency(matrix: _PlayedMatrix, t: int, k: int) -> list[int]:
    window = matrix.played[max(0, t - k) : t]
    counts = window.sum(axis=0)
    seen = matrix.played[:t]
    last_played = np.where(seen.any(axis=0), t - 1 - np.argmax(seen[::-1], axis=0), -1)
    candidates = np.flatnonzero(counts > 0)
    order = np.lexsort((-last_played[candidates], -counts[candidates]))
    return [int(i) for i in candidates[order]]


def rank_model(ranker: Ranker, target: Target) -> list[int]:
    if target.songs.size == 0:
        return []
    order = np.argsort(-ranker.probabilities(target.signals), kind="stable")
    return [int(i) for i in target.songs[order]]


def tune_k(matrix: _PlayedMatrix, table: SignalTable, first_test: int) -> int:
    """The window k with the best mean F1 over the shows before the test period."""
    targets = [t for t in table.targets[1:first_test]]
    if not targets:
        return DEFAULT_K
    best, best_f1 = DEFAULT_K, -1.0
    for k in K_GRID:
        f1 = float(np.mean([
            score_ranking(rank_recent_frequency(matrix, t.index, k), t.true_songs,
                          t.true_length)["f1"]
            for t in targets
        ]))  # fmt: skip
        if f1 > best_f1 + 1e-12:
            best, best_f1 = k, f1
        if k >= first_test:  # larger windows see the same shows
            break
    return best


@dataclass
class ArtistResult:
    shows: int
    test_shows: int
    k: int
    scores: dict[str, list[dict[str, float]]]  # model -> one score dict per test show

    def means(self) -> dict[str, dict[str, float]]:
        return {name: _mean(rows) for name, rows in self.scores.items()}


def _mean(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(rows)
    return {m: round(float(np.mean([r[m] for r in rows])), 4) if rows else 0.0 for m in METRICS}


def rolling_rankings(
    history: Sequence[PlayedShow], config: RankerConfig = RankerConfig()
) -> Iterator[tuple[Target, int, dict[str, list[str]]]]:
    """For each test show: its target, the tuned k, and every model's ranked song names,
    each made from the shows before it only."""
    table = build_signals(history)
    matrix = _PlayedMatrix.of(history, table)
    first_test = first_test_index(len(history))
    k = tune_k(matrix, table, first_test)
    ranker: Ranker | None = None
    fitted_at = 0
    for target in table.targets[first_test:]:
        t = target.index
        # Refit once 5 % more shows have been played since the last fit: a long history
        # barely moves with one more show, and this keeps a 900-show artist to ~5 fits.
        if ranker is None or t - fitted_at >= max(1, t // 20):
            start = None if ranker is None else ranker.weights
            ranker, fitted_at = fit_ranker(table.targets[1:t], config, start=start), t
        rankings = {
            "last_show": rank_last_show(matrix, t),
            "recent_frequency": rank_recent_frequency(matrix, t, k),
            "model": rank_model(ranker, target),
        }
        yield (
            target,
            k,
            {name: [table.vocabulary[i] for i in ranked] for name, ranked in rankings.items()},
        )


def evaluate_artist(
    history: Sequence[PlayedShow], config: RankerConfig = RankerConfig()
) -> ArtistResult | None:
    """Rolling-origin scores of every model on one artist; None with fewer than 2 shows."""
    if len(history) < 2:
        return None
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
    k = DEFAULT_K
    for target, tuned_k, rankings in rolling_rankings(history, config):
        k = tuned_k
        truth = frozenset(history[target.index].songs)
        for name, ranked in rankings.items():
            scores[name].append(score_ranking(ranked, truth, target.true_length))
    return ArtistResult(len(history), len(history) - first_test_index(len(history)), k, scores)


def evaluate(
    setlists: Mapping[str, Sequence[PlayedShow]],
    config: RankerConfig = RankerConfig(),
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """The evaluation table: `{"artists": {...}, "overall": {...}}` (see the CLI)."""
    artists: dict[str, object] = {}
    pooled: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
    for artist in sorted(setlists):
        result = evaluate_artist(setlists[artist], config)
        if progress is not None:
            progress(artist)
        if result is None:
            continue
        artists[artist] = {
            "shows": result.shows,
            "test_shows": result.test_shows,
            "recent_frequency_k": result.k,
            "models": result.means(),
        }
        for name in MODELS:
            pooled[name].extend(result.scores[name])
    return {"artists": artists, "overall": {name: _mean(rows) for name, rows in pooled.items()}}
