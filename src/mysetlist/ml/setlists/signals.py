"""Per-song signals for a target show, computed from the artist's earlier shows only.

One forward pass over the history: before show `j` is folded into the running state, the
signals for target `j` are read off it, so nothing from show `j` or later can reach them
(the rolling-origin guarantee is structural, not a filter). The upcoming show is simply the
target after the last played one.

Two kinds of column: per-song signals (`SONG_FEATURES`) and the artist's style at that
point (`STYLE_FEATURES`, one value per target, repeated on every candidate), which lets one
ranker trained across artists tell a fixed tour set from heavy rotation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from mysetlist.ml.setlists.setlist_history import PlayedShow, UpcomingShow

# Half-lives, in shows, of the decayed play shares: ~the last show, the last few, a tour,
# the artist's era.
HALF_LIVES = (1.0, 3.0, 10.0, 30.0)
SONG_FEATURES = (
    "played_last_show",
    "played_last_2",  # share of the last 2 shows that had the song
    "played_last_3",
    *(f"decayed_share_h{int(h)}" for h in HALF_LIVES),
    "overall_share",
    "shows_since_played_log",
    "streak_log",
    "tour_share",  # share of this tour's earlier shows that had the song
    "tour_unplayed",  # the tour has 2+ earlier shows and the song was in none of them
    "first_seen_age_log",  # log(1 + shows since the song was first played)
    "debut_recency",  # new songs entering the set: exp(-shows since first played / 3)
    "same_city_repeat",  # played at the previous show, in the same city, within 3 days
    "opener_share",
    "closer_share",
)
STYLE_FEATURES = (
    "rotation_rate",  # decayed share of a show's songs that the show before did not have
    "length_spread",  # decayed coefficient of variation of the set length
    "tour_position_log",  # log(1 + earlier shows of this tour)
    "history_log",  # log(1 + earlier shows)
    "set_share",  # recent set length / songs played so far: the base rate of a candidate
)
FEATURES = (*SONG_FEATURES, *STYLE_FEATURES)
N_FEATURES = len(FEATURES)
N_SONG_FEATURES = len(SONG_FEATURES)
_DECAYS = tuple(0.5 ** (1.0 / h) for h in HALF_LIVES)
_ROLE_DECAY = 0.8
_STYLE_DECAY = 0.5 ** (1.0 / 5.0)  # style drifts over about five shows
SAME_CITY_DAYS = 3


@dataclass(frozen=True)
class Target:
    """A show to predict: its candidates (songs played before it) and their signals."""

    index: int  # position in the history (len(history) for the upcoming show)
    date: date
    songs: NDArray[np.int64]  # vocabulary indices of the candidates
    signals: NDArray[np.float64]  # (len(songs), N_FEATURES)
    played: NDArray[np.bool_]  # per candidate: was it played (all False when upcoming)
    true_songs: frozenset[int]  # every song of the show, debuts included (empty if upcoming)
    true_length: int
    expected_debuts: float  # songs never played before, expected at this show (decayed mean)
    recent_length: int  # the recent (same-tour) set length: `predicted_length`


@dataclass
class SignalTable:
    vocabulary: list[str]
    targets: list[Target]  # targets[j] is show j (targets[0] has no candidates)
    lengths: NDArray[np.float64]  # distinct songs per played show


def _meta(show: PlayedShow | UpcomingShow) -> tuple[date, str | None, str | None]:
    return show.date, show.city, show.tour


class _Decayed:
    """An exponentially weighted mean of a per-show number."""

    def __init__(self, decay: float) -> None:
        self.decay, self.total, self.norm = decay, 0.0, 0.0

    def add(self, value: float) -> None:
        self.total = self.total * self.decay + value
        self.norm = self.norm * self.decay + 1.0

    def mean(self, default: float = 0.0) -> float:
        return self.total / self.norm if self.norm else default


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
    recent: list[NDArray[np.bool_]] = []  # the last 3 shows' played masks, newest last
    tour_counts: dict[str, NDArray[np.float64]] = {}
    tour_shows: dict[str, int] = {}
    rotation = _Decayed(_STYLE_DECAY)
    length = _Decayed(_STYLE_DECAY)
    length_sq = _Decayed(_STYLE_DECAY)
    debuts = _Decayed(_STYLE_DECAY)
    previous: PlayedShow | None = None
    targets: list[Target] = []
    shows: list[PlayedShow | UpcomingShow] = [*history, *([upcoming] if upcoming else [])]
    for j, target_show in enumerate(shows):
        day, city, tour = _meta(target_show)
        known = np.flatnonzero(count > 0)
        x = np.zeros((known.size, N_FEATURES))
        if known.size:
            x[:, 0] = last[known] == j - 1
            for k, col in ((2, 1), (3, 2)):
                x[:, col] = sum(mask[known] for mask in recent[-k:]) / min(k, len(recent))
            for d in range(len(_DECAYS)):
                x[:, 3 + d] = sums[d, known] / norms[d]
            c = 3 + len(_DECAYS)
            x[:, c] = count[known] / j
            x[:, c + 1] = np.log1p(j - 1 - last[known])
            x[:, c + 2] = np.log1p(streak[known])
            if tour is not None and tour_shows.get(tour, 0) > 0:
                share = tour_counts[tour][known] / tour_shows[tour]
                x[:, c + 3] = share
                if tour_shows[tour] >= 2:
                    x[:, c + 4] = share == 0
            age = j - 1 - first[known]
            x[:, c + 5] = np.log1p(age)
            x[:, c + 6] = np.exp(-age / 3.0)
            if (
                previous is not None
                and city is not None
                and previous.city == city
                and (day - previous.date).days <= SAME_CITY_DAYS
            ):
                x[:, c + 7] = x[:, 0]
            x[:, c + 8] = opener[known] / role_norm
            x[:, c + 9] = closer[known] / role_norm
            mean_length = length.mean()
            spread = math.sqrt(max(0.0, length_sq.mean() - mean_length**2))
            x[:, N_SONG_FEATURES:] = (
                rotation.mean(0.5),
                spread / mean_length if mean_length else 0.0,
                math.log1p(tour_shows.get(tour, 0) if tour is not None else 0),
                math.log1p(j),
                min(1.0, mean_length / known.size),
            )
        if isinstance(target_show, PlayedShow):
            show = target_show
            played_idx = np.array([index[s] for s in show.songs], dtype=np.int64)
            played_mask = np.zeros(m, dtype=bool)
            played_mask[played_idx] = True
            targets.append(
                Target(j, day, known, x, played_mask[known], frozenset(played_idx.tolist()),
                       len(show.songs), debuts.mean(), predicted_length(history[:j], target_show))
            )  # fmt: skip
            # Fold show j into the state.
            new = int((count[played_idx] == 0).sum())
            if j > 0:
                debuts.add(new)
                if played_idx.size:
                    rotation.add(float((~recent[-1][played_idx]).mean()))
            length.add(float(played_idx.size))
            length_sq.add(float(played_idx.size) ** 2)
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
            recent = [*recent[-2:], played_mask]
            if show.tour is not None:
                counts = tour_counts.setdefault(show.tour, np.zeros(m))
                counts[played_idx] += 1
                tour_shows[show.tour] = tour_shows.get(show.tour, 0) + 1
            previous = show
        else:
            targets.append(
                Target(j, day, known, x, np.zeros(known.size, bool), frozenset(), 0,
                       debuts.mean(), predicted_length(history, target_show))
            )  # fmt: skip
    lengths = np.array([len(s.songs) for s in history], dtype=np.float64)
    return SignalTable(vocabulary, targets, lengths)


def predicted_length(
    history: Sequence[PlayedShow], upcoming: PlayedShow | UpcomingShow | None
) -> int:
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
