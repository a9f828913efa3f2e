"""The music side of the world: genres, artists, venues, songs, shows and real setlists.

Pure generation (numpy, no database). Rows get their final ids here: the caller passes the
first free id of each identity-keyed table (`IdBases`), so the events generated later can
name artists, shows and songs by the ids they will have in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from mysetlist.demo import tour_setlists
from mysetlist.demo import vocabulary as words

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

SHOW_STATUSES: tuple[str, ...] = ("scheduled", "completed", "cancelled")
SCHEDULED, COMPLETED, CANCELLED = 0, 1, 2

SONGS_PER_ARTIST = (15, 40)  # inclusive range
PAST_CANCELLED_SHARE = 0.04
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
FUTURE_CANCELLED_SHARE = 0.03


@dataclass(frozen=True)
class IdBases:
    """The first id the world may use in each identity-keyed table."""

    artists: int = 1
    venues: int = 1
    shows: int = 1
    songs: int = 1
    setlist_votes: int = 1


@dataclass
class Catalog:
    genres: list[str]
    # artists (index i has id artist_ids[i])
    artist_ids: NDArray[np.int64]
    artist_names: list[str]
    artist_genres: list[list[str]]  # primary genre first
    artist_primary_genre: NDArray[np.int64]  # index into genres
    artist_popularity: NDArray[np.float64]  # sums to 1
    artist_created_us: NDArray[np.int64]
    # venues
    venue_ids: NDArray[np.int64]
    venue_rows: list[tuple[str, str, str, int, str]]  # name, city, country, capacity, tz
    # songs, grouped by artist: artist i owns song indexes [song_start[i], song_start[i+1])
    song_ids: NDArray[np.int64]
    song_artist: NDArray[np.int64]  # artist index
    song_titles: list[str]
    song_play_weight: NDArray[np.float64]  # sums to 1 within each artist
    song_start: NDArray[np.int64]  # len = artists + 1
    # shows, sorted by (artist index, starts_at); artist i owns [show_start[i], show_start[i+1])
    show_ids: NDArray[np.int64]
    show_artist: NDArray[np.int64]
    show_venue: NDArray[np.int64]  # venue index
    show_starts_us: NDArray[np.int64]
    show_status: NDArray[np.int64]  # SCHEDULED / COMPLETED / CANCELLED
    show_start: NDArray[np.int64]  # len = artists + 1
    show_tour: list[str | None]  # the tour a show belongs to (None: cancelled, no tour)
    artist_setlist_style: list[str]  # fixed / mixed / rotator (demo/tour_setlists.py)
    # the actual setlists of completed shows: one row per (show, position)
    setlist_show: NDArray[np.int64]  # show index
    setlist_position: NDArray[np.int64]  # 1-based
    setlist_song: NDArray[np.int64]  # song index
    # per show, which of its artist's songs were played (show index, song slot within artist)
    played_slots: NDArray[np.bool_]

    @property
    def max_songs_per_artist(self) -> int:
        return int(np.diff(self.song_start).max())


def _utc_offset_us(tz_name: str, at: datetime) -> int:
    offset = at.astimezone(ZoneInfo(tz_name)).utcoffset()
    return int(offset.total_seconds() * 1_000_000) if offset is not None else 0


def _unique_names(rng: np.random.Generator, count: int, make: list[str]) -> list[str]:
    """`count` distinct names drawn from the candidate list `make` (with numbered fallbacks)."""
    order = rng.permutation(len(make))
    names = [make[i] for i in order[:count]]
    n = 2
    while len(names) < count:  # more artists than word combinations: number the rest
        names += [f"{name} {n}" for name in (make[i] for i in order)][: count - len(names)]
        n += 1
    return names


def _artist_name_candidates() -> list[str]:
    candidates = [f"The {adj} {noun}" for adj in words.ADJECTIVES for noun in words.PLURAL_NOUNS]
    candidates += [f"{adj} {noun}" for adj in words.ADJECTIVES for noun in words.NOUNS]
    candidates += [f"{first} {last}" for first in words.FIRST_NAMES for last in words.LAST_NAMES]
    return candidates


def _flavour(name: str, genre: str, rng: np.random.Generator) -> str:
    prefixes = words.GENRE_NAME_PREFIXES.get(genre)
    if prefixes and rng.random() < 0.5 and not name.startswith("The "):
        return f"{prefixes[int(rng.integers(len(prefixes)))]} {name.split()[-1]}"
    return name


def _song_titles(rng: np.random.Generator, count: int) -> list[str]:
    kinds = rng.integers(0, 4, count)
    verbs = rng.integers(0, len(words.SONG_VERBS), count)
    nouns = rng.integers(0, len(words.SONG_NOUNS), (count, 2))
    adjectives = rng.integers(0, len(words.ADJECTIVES), count)
    titles = []
    for kind, verb, (n1, n2), adj in zip(kinds, verbs, nouns, adjectives, strict=True):
        noun, other = words.SONG_NOUNS[n1], words.SONG_NOUNS[n2]
        if kind == 0:
            titles.append(f"{words.ADJECTIVES[adj]} {noun}")
        elif kind == 1:
            titles.append(f"{words.SONG_VERBS[verb]} {noun}")
        elif kind == 2:
            titles.append(f"{noun} of {other}")
        else:
            titles.append(f"{words.SONG_VERBS[verb]} the {other}")
    return titles


def generate_catalog(
    rng: np.random.Generator,
    *,
    genres: int,
    artists: int,
    shows: int,
    history_start_us: int,
    as_of_us: int,
    future_days: int,
    ids: IdBases,
    archive_shows_per_artist: float = 0.0,
) -> Catalog:
    genre_names = list(words.GENRES[:genres])
    n_genres = len(genre_names)
    as_of = datetime.fromtimestamp(as_of_us / 1e6, UTC)

    # Artists: a primary genre (some genres are bigger than others), sometimes a second one.
    genre_size = rng.gamma(2.0, 1.0, n_genres)
    primary = rng.choice(n_genres, size=artists, p=genre_size / genre_size.sum())
    has_second = rng.random(artists) < 0.35
    second = (primary + rng.integers(1, max(n_genres, 2), artists)) % n_genres
    popularity = rng.lognormal(0.0, 1.2, artists)
    popularity /= popularity.sum()
    base_names = _unique_names(rng, artists, _artist_name_candidates())
    names = [
        _flavour(name, genre_names[g], rng) for name, g in zip(base_names, primary, strict=True)
    ]
    artist_genres = [
        [genre_names[p]] + ([genre_names[s]] if two and s != p else [])
        for p, s, two in zip(primary, second, has_second, strict=True)
    ]
    artist_created = history_start_us - rng.integers(30, 720, artists) * DAY_US

    # Venues in real cities; a venue's local evening is when its shows start.
    n_venues = int(min(len(words.CITIES) * 6, max(10, shows // 12)))
    city_of_venue = rng.integers(0, len(words.CITIES), n_venues)
    venue_rows: list[tuple[str, str, str, int, str]] = []
    venue_names: set[str] = set()
    for city_index in city_of_venue:
        city, country, tz = words.CITIES[city_index]
        for _ in range(20):
            kind = words.VENUE_KINDS[int(rng.integers(len(words.VENUE_KINDS)))]
            style = int(rng.integers(3))
            if style == 0:
                name = f"{city} {kind}"
            elif style == 1:
                name = f"The {words.ADJECTIVES[int(rng.integers(len(words.ADJECTIVES)))]} {kind}"
            else:
                name = f"{words.NOUNS[int(rng.integers(len(words.NOUNS)))]} {kind}"
            if name not in venue_names:
                break
        venue_names.add(name)
        capacity = int(np.clip(rng.lognormal(7.5, 1.0), 200, 60_000) // 50 * 50)
        venue_rows.append((name, city, country, capacity, tz))
    venue_offset_us = np.array([_utc_offset_us(row[4], as_of) for row in venue_rows])

    # Songs: 15-40 per artist, a few "hits" that make most setlists.
    songs_per_artist = rng.integers(SONGS_PER_ARTIST[0], SONGS_PER_ARTIST[1] + 1, artists)
    song_start = np.concatenate([[0], np.cumsum(songs_per_artist)]).astype(np.int64)
    n_songs = int(song_start[-1])
    song_artist = np.repeat(np.arange(artists), songs_per_artist)
    # Zipf-like weights by a random rank within the artist's catalogue.
    rank = np.concatenate([rng.permutation(k) for k in songs_per_artist]) + 1
    weight = rank.astype(np.float64) ** -0.9
    weight /= np.bincount(song_artist, weights=weight)[song_artist]
    titles = _song_titles(rng, n_songs)

    # Shows: popular artists tour more; spread from the history start to the future horizon.
    show_artist = rng.choice(artists, size=shows, p=popularity**0.6 / (popularity**0.6).sum())
    first_day = history_start_us // DAY_US
    last_day = (as_of_us + future_days * DAY_US) // DAY_US
    day = rng.integers(first_day, last_day + 1, shows)
    venue = rng.integers(0, n_venues, shows)
    # Before the history window, each artist's past tours (setlists the model learns from;
    # no fan activity): more for popular artists, at least a handful each.
    share = popularity**0.6 / (popularity**0.6).sum()
    archived = np.clip(np.round(archive_shows_per_artist * artists * share), 3, 400).astype(int)
    if archive_shows_per_artist <= 0:
        archived[:] = 0
    archive_end = date.fromordinal(_EPOCH_ORDINAL + int(first_day) - 14)
    archive_artist, archive_day, archive_venue = [], [], []
    for touring in np.flatnonzero(archived):
        days = tour_setlists.tour_dates(rng, int(archived[touring]), archive_end)
        archive_artist.append(np.full(len(days), touring))
        archive_day.append(np.array([d.toordinal() - _EPOCH_ORDINAL for d in days]))
        # residencies: 1-3 nights at one venue
        nights = tour_setlists.residencies(rng, list(range(n_venues)), len(days))
        archive_venue.append(np.array(nights, dtype=np.int64))
    if archive_artist:
        show_artist = np.concatenate([show_artist, *archive_artist])
        day = np.concatenate([day, *archive_day])
        venue = np.concatenate([venue, *archive_venue])
    shows = len(show_artist)
    local_start_us = (19 * 60 + rng.integers(0, 5, shows) * 30) * 60_000_000  # 19:00-21:00
    starts = day * DAY_US + local_start_us - venue_offset_us[venue]
    order = np.lexsort((starts, show_artist))
    show_artist, venue, starts = show_artist[order], venue[order], starts[order]
    past = starts < as_of_us - 3 * HOUR_US
    cancelled = rng.random(shows) < np.where(past, PAST_CANCELLED_SHARE, FUTURE_CANCELLED_SHARE)
    status = np.where(cancelled, CANCELLED, np.where(past, COMPLETED, SCHEDULED))
    show_start = np.searchsorted(show_artist, np.arange(artists + 1)).astype(np.int64)

    # Setlists of completed shows, tour by tour (demo/tour_setlists.py): each artist has a
    # style (a fixed tour set, a core with rotating slots, or heavy rotation), a core set,
    # opener and closer per tour, and new songs after each release.
    max_slots = int(songs_per_artist.max())
    played = np.zeros((shows, max_slots), dtype=bool)
    set_show: list[NDArray[np.int64]] = []
    set_song: list[NDArray[np.int64]] = []
    set_position: list[NDArray[np.int64]] = []
    setlist_style = rng.choice(
        len(tour_setlists.STYLES), size=artists, p=tour_setlists.STYLE_SHARES
    )
    show_tour: list[str | None] = [None] * shows
    for a in range(artists):
        lo, hi = int(song_start[a]), int(song_start[a + 1])
        own = np.arange(show_start[a], show_start[a + 1])
        live = own[status[own] != CANCELLED]
        if live.size == 0:
            continue
        days_of = [date.fromordinal(_EPOCH_ORDINAL + int(t // DAY_US)) for t in starts[live]]
        cities = [venue_rows[int(v)][1] for v in venue[live]]
        setlists, tours, _ = tour_setlists.setlists_for(
            rng, tour_setlists.STYLES[int(setlist_style[a])], days_of, cities, weight[lo:hi]
        )
        for s, songs, tour in zip(live, setlists, tours, strict=True):
            show_tour[int(s)] = f"{names[a]} Tour {tour}"
            if status[s] != COMPLETED:
                continue  # an upcoming show's setlist is what the fans predict
            chosen = np.array(songs, dtype=np.int64)
            played[s, chosen] = True
            set_show.append(np.full(len(chosen), s))
            set_song.append(lo + chosen)
            set_position.append(np.arange(1, len(chosen) + 1))
        # A song's play weight is how often it was actually played (smoothed): what a fan who
        # follows the artist knows (songs released late were played less).
        plays = played[own, : hi - lo].sum(axis=0) + 0.5
        weight[lo:hi] = plays / plays.sum()

    def cat(parts: list[NDArray[np.int64]]) -> NDArray[np.int64]:
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    return Catalog(
        genres=genre_names,
        artist_ids=ids.artists + np.arange(artists, dtype=np.int64),
        artist_names=names,
        artist_genres=artist_genres,
        artist_primary_genre=primary.astype(np.int64),
        artist_popularity=popularity,
        artist_created_us=artist_created.astype(np.int64),
        venue_ids=ids.venues + np.arange(n_venues, dtype=np.int64),
        venue_rows=venue_rows,
        song_ids=ids.songs + np.arange(n_songs, dtype=np.int64),
        song_artist=song_artist.astype(np.int64),
        song_titles=titles,
        song_play_weight=weight,
        song_start=song_start,
        show_ids=ids.shows + np.arange(shows, dtype=np.int64),
        show_artist=show_artist.astype(np.int64),
        show_venue=venue.astype(np.int64),
        show_starts_us=starts.astype(np.int64),
        show_status=status.astype(np.int64),
        show_start=show_start,
        show_tour=show_tour,
        artist_setlist_style=[tour_setlists.STYLES[int(i)] for i in setlist_style],
        setlist_show=cat(set_show),
        setlist_position=cat(set_position),
        setlist_song=cat(set_song),
        played_slots=played,
    )
