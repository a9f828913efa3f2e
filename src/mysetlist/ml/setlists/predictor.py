"""The setlist model the product serves: ranked songs with probabilities, the predicted
length, and for each song the reason a fan can read ("played at 9 of the last 10 shows").

The ranking comes from the cross-artist ranker registered in the model registry (trained by
`training.train_setlist_ranker`), corrected for the artist from its own shows; until one is
registered, from the recency-decayed play share. The length is the number of top songs that
maximises the expected F1, the metric every prediction is scored with after the show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mysetlist.ml.setlists.ranker import (
    CrossArtistRanker,
    best_set_size,
    calibrate_to_length,
    fallback_probabilities,
)
from mysetlist.ml.setlists.setlist_history import PlayedShow, UpcomingShow
from mysetlist.ml.setlists.signals import FEATURES, build_signals

MODEL_NAME = "setlist_ranker"  # its name in the model registry
FALLBACK_MODEL = "decayed_frequency"
REASON_WINDOW = 10


@dataclass(frozen=True)
class LoadedRanker:
    version: int
    model: CrossArtistRanker


@dataclass(frozen=True)
class PredictedSong:
    song: str
    probability: float
    reason: str


@dataclass(frozen=True)
class SetlistPrediction:
    model: str
    length: int
    songs: list[PredictedSong]  # every candidate, most likely first


def _streak(history: Sequence[PlayedShow], test: object) -> int:
    run = 0
    for show in reversed(history):
        if not test(show):  # type: ignore[operator]
            break
        run += 1
    return run


def explain(history: Sequence[PlayedShow], upcoming: UpcomingShow, song: str, feature: str) -> str:
    """A sentence for the signal that lifted (or sank) `song` most."""
    recent = history[-REASON_WINDOW:]
    played_recent = sum(song in s.songs for s in recent)
    if feature == "tour_share" and upcoming.tour:
        tour = [s for s in history if s.tour == upcoming.tour]
        return (f"played at {sum(song in s.songs for s in tour)} of {len(tour)} shows "
                f"of the {upcoming.tour} tour")  # fmt: skip
    if feature == "opener_share":
        run = _streak(history, lambda s: bool(s.songs) and s.songs[0] == song)
        if run >= 2:
            return f"opened the last {run} shows"
        return f"opened {sum(bool(s.songs) and s.songs[0] == song for s in recent)} " \
               f"of the last {len(recent)} shows"  # fmt: skip
    if feature == "closer_share":
        run = _streak(history, lambda s: bool(s.songs) and s.songs[-1] == song)
        if run >= 2:
            return f"closed the last {run} shows"
        return f"closed {sum(bool(s.songs) and s.songs[-1] == song for s in recent)} " \
               f"of the last {len(recent)} shows"  # fmt: skip
    if feature == "debut_recency":
        first = next(i for i, s in enumerate(history) if song in s.songs)
        ago = len(history) - first
        return "new: first played at the last show" if ago == 1 else \
            f"new: first played {ago} shows ago, at {played_recent} since"  # fmt: skip
    if feature == "streak_log":
        run = _streak(history, lambda s: song in s.songs)
        if run >= 2:
            return f"played at each of the last {run} shows"
    if feature == "same_city_repeat":
        return "played the night before in the same city"
    if feature in ("shows_since_played_log", "tour_unplayed") and played_recent == 0:
        since = next((k for k, s in enumerate(reversed(history)) if song in s.songs), None)
        return f"not played for {since} shows" if since is not None else "rarely played"
    return f"played at {played_recent} of the last {len(recent)} shows"


def _reasons(contributions: NDArray[np.float64], order: NDArray[np.int64]) -> list[str]:
    """Per candidate, the feature with the largest contribution relative to the average
    candidate: positive for the songs ranked in, negative for those ranked out."""
    names = []
    for rank, i in enumerate(order):
        pick = np.argmax(contributions[i]) if rank < len(order) // 2 else np.argmin(
            contributions[i])  # fmt: skip
        names.append(FEATURES[int(pick)])
    return names


def predict_setlist(
    history: Sequence[PlayedShow],
    upcoming: UpcomingShow,
    ranker: LoadedRanker | None = None,
) -> SetlistPrediction:
    """Rank the artist's songs for `upcoming` with `ranker` (the artist's correction fitted
    on its past shows) or, without one, by the decayed play share."""
    table = build_signals(history, upcoming)
    target = table.targets[-1]
    if ranker is not None:
        adjustment = ranker.model.fit_artist(table.targets[1:-1])
        probabilities = ranker.model.probabilities(target.signals, adjustment)
        contributions = ranker.model.contributions(target.signals)
        name = f"{MODEL_NAME} v{ranker.version}"
    else:
        probabilities = fallback_probabilities(target)
        contributions = np.zeros_like(target.signals)
        column = FEATURES.index("decayed_share_h3")
        contributions[:, column] = probabilities - probabilities.mean()
        name = FALLBACK_MODEL
    probabilities = calibrate_to_length(probabilities, target.recent_length, target.expected_debuts)
    order = np.argsort(-probabilities, kind="stable")
    features = _reasons(contributions, order)
    songs = [
        PredictedSong(
            table.vocabulary[int(target.songs[i])],
            round(float(probabilities[i]), 4),
            explain(history, upcoming, table.vocabulary[int(target.songs[i])], feature),
        )
        for i, feature in zip(order, features, strict=True)
    ]
    return SetlistPrediction(name, best_set_size(probabilities, target.expected_debuts), songs)
