"""Realistic setlist histories: tours with a core set and rotating slots, new songs after a
release, steady openers and closers, multi-night runs that avoid repeating the previous
night, and three kinds of artist (the setlist model has to tell them apart):

- `fixed`: one tour set played almost unchanged every night (the previous show predicts well);
- `mixed`: a core set plus a few rotating slots;
- `rotator`: a small core and many rotating slots drawn from a deep catalogue, avoiding the
  songs of the last two shows (play frequency over many shows predicts well).

A tour is a run of shows without a break of more than `TOUR_BREAK_DAYS` (and at most 40
shows). Each tour but the first follows a release: new songs join the catalogue and, being
new, are likely to make the tour's core set. At each tour start the core set, opener and
closer are drawn; every show plays the core (each song 97 % of nights) plus rotating slots
drawn by popularity, skipping songs of recent shows (per style) and, in the same city as
the night before, that night's rotating songs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T")
STYLES = ("fixed", "mixed", "rotator")
STYLE_SHARES = (0.25, 0.55, 0.2)  # of artists, in the demo world
TOUR_BREAK_DAYS = 30
_CORE_SHARE = {"fixed": 0.92, "mixed": 0.65, "rotator": 0.3}
_AVOID_RECENT = {"fixed": 0, "mixed": 1, "rotator": 2}
_SET_LENGTH = {"fixed": 17, "mixed": 17, "rotator": 21}


@dataclass(frozen=True)
class TourShow:
    day: date
    city: str
    tour: str
    songs: tuple[int, ...]  # song numbers within the artist's catalogue, in order


@dataclass(frozen=True)
class ArtistHistory:
    style: str
    catalogue: int  # songs released by the last show
    shows: list[TourShow]


def tour_dates(rng: np.random.Generator, shows: int, end: date) -> list[date]:
    """`shows` show days in tours (1-3 days apart, 20-90 days between tours), the last on
    `end`, oldest first."""
    gaps: list[int] = []
    while len(gaps) < shows - 1:
        tour = int(rng.integers(12, 40))
        gaps += [int(rng.integers(1, 4)) for _ in range(tour - 1)]
        gaps.append(int(rng.integers(20, 90)))
    gaps = gaps[: max(shows - 1, 0)]
    days = [end]
    for gap in reversed(gaps):
        days.append(days[-1] - timedelta(days=gap))
    return days[::-1]


def residencies(rng: np.random.Generator, places: Sequence[T], shows: int) -> list[T]:
    """A place (city or venue) per show, with runs of 1-3 nights in the same place."""
    out: list[T] = []
    while len(out) < shows:
        place = places[int(rng.integers(len(places)))]
        out += [place] * int(rng.choice([1, 1, 1, 2, 3]))
    return out[:shows]


def tours_of(days: Sequence[date]) -> list[int]:
    """The tour number (1-based) of each show day, oldest first."""
    tours, tour, length = [], 1, 0
    for i, day in enumerate(days):
        if i and ((day - days[i - 1]).days > TOUR_BREAK_DAYS or length >= 40):
            tour, length = tour + 1, 0
        tours.append(tour)
        length += 1
    return tours


def setlists_for(
    rng: np.random.Generator,
    style: str,
    days: Sequence[date],
    cities: Sequence[str],
    popularity: NDArray[np.float64],
    *,
    first_catalogue: int | None = None,
) -> tuple[list[tuple[int, ...]], list[int], int]:
    """Setlists (song numbers 0..len(popularity)-1) for shows on `days` in `cities`, oldest
    first; returns them, each show's tour number and the songs released by the last show."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}")
    n_songs = len(popularity)
    catalogue = first_catalogue or max(min(n_songs, 8), round(0.6 * n_songs))
    tours = tours_of(days)
    out: list[tuple[int, ...]] = []
    core: list[int] = []
    opener = closer = 0
    length = 0
    new_songs: set[int] = set()
    for i, (city, tour) in enumerate(zip(cities, tours, strict=True)):
        if i == 0 or tour != tours[i - 1]:
            if i > 0 and catalogue < n_songs:  # a release before every later tour
                released = min(n_songs, catalogue + int(rng.integers(4, 9)))
                new_songs = set(range(catalogue, released))
                catalogue = released
            weight = np.array(
                [popularity[s] * (2.5 if s in new_songs else 1.0) for s in range(catalogue)]
            )
            length = int(np.clip(rng.normal(_SET_LENGTH[style], 2.0), 8, 28))
            core_n = min(catalogue - 1, max(3, round(length * _CORE_SHARE[style])))
            core = [int(s) for s in rng.choice(catalogue, core_n, replace=False,
                                               p=weight / weight.sum())]  # fmt: skip
            opener, closer = core[0], core[-1]
        recent: set[int] = set()
        if _AVOID_RECENT[style]:
            for previous in out[-_AVOID_RECENT[style] :]:
                recent.update(previous)
        if i and cities[i - 1] == city:  # same city, the night before
            recent.update(s for s in out[-1] if s not in core)
        body = [s for s in core[1:-1] if rng.random() < 0.97]
        slots = max(0, length + int(rng.integers(-1, 2)) - len(body) - 2)
        pool = [s for s in range(catalogue) if s not in core and s not in recent]
        if len(pool) < slots:
            pool = [s for s in range(catalogue) if s not in core]
        rotating: list[int] = []
        if pool and slots:
            p = popularity[pool] / popularity[pool].sum()
            rotating = [int(s) for s in rng.choice(pool, min(slots, len(pool)), replace=False,
                                                    p=p)]  # fmt: skip
        for song in rotating:  # rotating songs take random places; opener and closer hold
            body.insert(int(rng.integers(0, len(body) + 1)), song)
        first = opener if rng.random() < 0.9 or not body else body.pop(0)
        last = closer if rng.random() < 0.9 or not body else body.pop()
        out.append(tuple(dict.fromkeys([first, *body, last])))
    return out, tours, catalogue


def generate_history(
    rng: np.random.Generator,
    *,
    style: str,
    shows: int,
    end: date,
    cities: list[str],
    songs: int | None = None,
) -> ArtistHistory:
    """A standalone artist with `shows` past shows ending on `end` (tests, benchmarks)."""
    n_songs = songs or {"fixed": 40, "mixed": 60, "rotator": 110}[style]
    popularity = rng.lognormal(0.0, 0.8, n_songs)
    days = tour_dates(rng, shows, end)
    places = residencies(rng, cities, shows)
    setlists, tours, catalogue = setlists_for(rng, style, days, places, popularity)
    return ArtistHistory(
        style,
        catalogue,
        [TourShow(d, c, f"Tour {t}", s)
         for d, c, t, s in zip(days, places, tours, setlists, strict=True)],
    )  # fmt: skip
