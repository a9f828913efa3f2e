"""Per-song signals for a target show, computed from the artist's earlier shows only.

One forward pass over the history: before show `j` is folded into the running state, the
signals for target `j` are read off it, so nothing from show `j` or later can reach them
(the rolling-origin guarantee is structural, not a filter). The upcoming show is simply the
target after the last played one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from mysetlist.ml.setlists.setlist_history import PlayedShow, UpcomingShow

# The columns of a signal matrix, in order. Shares are in [0, 1]; counts are log-scaled.
FEATURES = (
    "played_last_show",
    "recent_share_short",  # exponentially weighted share of shows, decay 0.5 (~last 2)
    "recent_share_medium",  # decay 0.8 (~last 5)
    "recent_share_long",  # decay 0.95 (~last 20)
    "overall_share",
    "shows_since_played_log",
    "streak_log",
    "tour_share",  # share of this tour's earlier shows that had the song
    "tour_unplayed",  # the tour has 2+ earlier shows and the song was in none of them
    "debut_recency",  # new songs entering the set: exp(-shows since first played / 3)
    "same_city_repeat",  # played at the previous show, in the same city, within 3 days
    "opener_share",
    "closer_share",
)
N_FEATURES = len(FEATURES)
_DECAYS = (0.5, 0.8, 0.95)
_ROLE_DECAY = 0.8
SAME_CITY_DAYS = 3


@dataclass(frozen=True)
class Target:
    """A show to predict: its candidates (songs played before it) and their signals."""

    index: int  # position in the history (len(history) for the upcoming show)
    songs: NDArray[np.int64]  # vocabulary indices of the candidates
    signals: NDArray[np.float64]  # (len(songs), N_FEATURES)
    played: NDArray[np.bool_]  # per candidate: was it played (all False when upcoming)
    true_songs: frozenset[int]  # every song of the show, debuts included (empty if upcoming)
    true_length: int


@dataclass
class SignalTable:
    vocabulary: list[str]
    targets: list[Target]  # targets[j] is show j (targets[0] has no candidates)
    lengths: NDArray[np.float64]  # distinct songs per played show


def _meta(show: PlayedShow | UpcomingShow) -> tuple[date, str | None, str | None]:
    return show.date, show.city, show.tour


def build_signals(
    history: Sequence[PlayedShow], upcoming: UpcomingShow | None = None
) -> SignalTable:
    """Signals for every show of `history` as a target, plus `upcoming` if given."""
    vocabulary: list[str] = []
    index: dict[str, int] = {}
    for show in history:
        for song in show.songs:
            if song not in index:
                index[song] = len(vocabulary)
                vocabulary.append(song)
    m = len(vocabulary)
    sums = np.zeros((len(_DECAYS), m))
    norms = np.zeros(len(_DECAYS))
    opener = np.zeros(m)
    closer = np.zeros(m)
    role_norm = 0.0
    count = np.zeros(m)
    last = np.full(m, -1, dtype=np.int64)
    first = np.full(m, -1, dtype=np.int64)
    streak = np.zeros(m)
    tour_counts: dict[str, NDArray[np.float64]] = {}
    tour_shows: dict[str, int] = {}
    previous: PlayedShow | None = None
    targets: list[Target] = []
    shows: list[PlayedShow | UpcomingShow] = [*history, *([upcoming] if upcoming else [])]
    for j, target_show in enumerate(shows):
        day, city, tour = _meta(target_show)
        known = np.flatnonzero(count > 0)
        x = np.zeros((known.size, N_FEATURES))
        if known.size:
            x[:, 0] = last[known] == j - 1
            for d in range(len(_DECAYS)):
                x[:, 1 + d] = sums[d, known] / norms[d]
            x[:, 4] = count[known] / j
            x[:, 5] = np.log1p(j - 1 - last[known])
            x[:, 6] = np.log1p(streak[known])
            if tour is not None and tour_shows.get(tour, 0) > 0:
                share = tour_counts[tour][known] / tour_shows[tour]
                x[:, 7] = share
                if tour_shows[tour] >= 2:
                    x[:, 8] = share == 0
            x[:, 9] = np.exp(-(j - 1 - first[known]) / 3.0)
            if (
                previous is not None
                and city is not None
                and previous.city == city
                and (day - previous.date).days <= SAME_CITY_DAYS
            ):
                x[:, 10] = x[:, 0]
            x[:, 11] = opener[known] / role_norm
            x[:, 12] = closer[known] / role_norm
        if isinstance(target_show, PlayedShow):
            show = target_show
            played_idx = np.array([index[s] for s in show.songs], dtype=np.int64)
            played_mask = np.zeros(m, dtype=bool)
            played_mask[played_idx] = True
            targets.append(
                Target(j, known, x, played_mask[known], frozenset(played_idx.tolist()),
                       len(show.songs))
            )  # fmt: skip
            # Fold show j into the state.
            for d, decay in enumerate(_DECAYS):
                sums[d] *= decay
                sums[d, played_idx] += 1.0
                norms[d] = norms[d] * decay + 1.0
            opener *= _ROLE_DECAY
            closer *= _ROLE_DECAY
            role_norm = role_norm * _ROLE_DECAY + 1.0
            if show.songs:
                opener[played_idx[0]] += 1.0
                closer[played_idx[-1]] += 1.0
            streak = np.where(played_mask, streak + 1, 0.0)
            count[played_idx] += 1
            first[played_idx[first[played_idx] < 0]] = j
            last[played_idx] = j
            if show.tour is not None:
                counts = tour_counts.setdefault(show.tour, np.zeros(m))
                counts[played_idx] += 1
                tour_shows[show.tour] = tour_shows.get(show.tour, 0) + 1
            previous = show
        else:
            targets.append(Target(j, known, x, np.zeros(known.size, bool), frozenset(), 0))
    lengths = np.array([len(s.songs) for s in history], dtype=np.float64)
    return SignalTable(vocabulary, targets, lengths)


def predicted_length(history: Sequence[PlayedShow], upcoming: UpcomingShow | None) -> int:
    """Distinct songs expected: the same tour's recent shows if it has 2+, else all recent
    shows, weighted towards the latest (decay 0.7)."""
    if not history:
        return 0
    pool = [s for s in history if upcoming is not None and s.tour and s.tour == upcoming.tour]
    if len(pool) < 2:
        pool = list(history)
    weights = np.array([0.7**k for k in range(len(pool))][::-1])
    lengths = np.array([len(s.songs) for s in pool], dtype=np.float64)
    return max(1, math.floor(float(weights @ lengths / weights.sum()) + 0.5))
