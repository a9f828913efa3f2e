"""Realistic setlist histories: tours with a core set and rotating slots, new songs after a
release, steady openers and closers, multi-night runs that avoid repeating the previous
night, and three kinds of artist (the setlist model has to tell them apart):

- `fixed`: one tour set played almost unchanged every night (the previous show predicts well);
- `mixed`: a core set plus a few rotating slots;
- `rotator`: a small core and many rotating slots drawn from a deep catalogue, avoiding the
  songs of the last two shows (play frequency over many shows predicts well).

Each tour starts after a release: 8-12 new songs enter, most of them into the core set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

STYLES = ("fixed", "mixed", "rotator")
_CORE_SHARE = {"fixed": 0.92, "mixed": 0.65, "rotator": 0.3}
_FIRST_CATALOGUE = {"fixed": 22, "mixed": 35, "rotator": 70}
_AVOID_RECENT = {"fixed": 0, "mixed": 1, "rotator": 2}


@dataclass(frozen=True)
class TourShow:
    day: date
    city: str
    tour: str
    songs: tuple[int, ...]  # song numbers within the artist's catalogue, in order


@dataclass(frozen=True)
class ArtistHistory:
    style: str
    catalogue: int  # songs released so far (song numbers 0 .. catalogue-1)
    shows: list[TourShow]


def generate_history(
    rng: np.random.Generator,
    *,
    style: str,
    shows: int,
    end: date,
    cities: list[str],
    first_catalogue: int | None = None,
) -> ArtistHistory:
    """`shows` past shows ending on or before `end`, oldest first."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}")
    catalogue = first_catalogue or _FIRST_CATALOGUE[style]
    popularity = list(rng.lognormal(0.0, 0.8, catalogue))
    out: list[TourShow] = []
    day = end - timedelta(days=int(shows * 3.2) + 60)
    tour_no = 0
    while len(out) < shows:
        tour_no += 1
        if tour_no > 1:  # a release before every tour but the first
            new = int(rng.integers(8, 13))
            popularity.extend(rng.lognormal(0.6, 0.6, new))
            catalogue += new
            day += timedelta(days=int(rng.integers(20, 60)))
        pop = np.array(popularity)
        age = catalogue - np.arange(catalogue)  # newer songs have small age
        newness = np.where(age <= (new if tour_no > 1 else 0), 2.5, 1.0)
        weight = pop * newness
        length = int(np.clip(rng.normal(17 if style != "rotator" else 21, 2.0), 10, 28))
        core_n = min(catalogue - 2, max(3, round(length * _CORE_SHARE[style])))
        core = list(rng.choice(catalogue, size=core_n, replace=False, p=weight / weight.sum()))
        opener, closer = core[0], core[-1]
        middle = core[1:-1]
        tour_shows = int(rng.integers(12, 40))
        for _ in range(tour_shows):
            if len(out) >= shows:
                break
            nights = int(rng.choice([1, 1, 1, 2, 3]))
            city = str(rng.choice(cities))
            for _night in range(nights):
                if len(out) >= shows:
                    break
                recent: set[int] = set()
                for previous in out[-_AVOID_RECENT[style] :] if _AVOID_RECENT[style] else []:
                    recent.update(previous.songs)
                if out and out[-1].city == city:  # same city, the night before
                    recent.update(s for s in out[-1].songs if s not in core)
                body = [s for s in middle if rng.random() < 0.97]
                slots = max(0, length + int(rng.integers(-1, 2)) - len(body) - 2)
                pool = [s for s in range(catalogue) if s not in core and s not in recent]
                if len(pool) < slots:
                    pool = [s for s in range(catalogue) if s not in core]
                if pool and slots:
                    p = np.array([popularity[s] for s in pool])
                    rotating = list(rng.choice(pool, size=min(slots, len(pool)), replace=False,
                                               p=p / p.sum()))  # fmt: skip
                else:
                    rotating = []
                # Rotating songs take random places inside the body; opener and closer hold.
                for song in rotating:
                    body.insert(int(rng.integers(0, len(body) + 1)), song)
                first = opener if rng.random() < 0.9 else body.pop(0) if body else opener
                last = closer if rng.random() < 0.9 else body.pop() if body else closer
                songs = tuple(dict.fromkeys(int(s) for s in [first, *body, last]))
                out.append(TourShow(day, city, f"Tour {tour_no}", songs))
                day += timedelta(days=1)
            day += timedelta(days=int(rng.integers(1, 4)))
    shift = end - out[-1].day
    return ArtistHistory(
        style, catalogue, [TourShow(s.day + shift, s.city, s.tour, s.songs) for s in out]
    )
