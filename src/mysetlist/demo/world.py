"""The synthetic MySetlist world: `build_world(database_url, WorldSpec(...))`.

A deterministic (per seed) fan platform: genres, artists with songs, venues in real cities,
shows from `days` ago to `future_days` ahead (past ones completed with a real setlist, a
few cancelled), users who signed up in cohorts over the history, each with latent genre
tastes and a heavy-tailed activity level, a planted share of whom churn; their follows,
setlist votes and full event history (`analytics.user_events`, source 'demo'). What was
planted (tastes, activity, skill, churn dates) is written to the `demo_truth` schema.

Generation is vectorised numpy, one chunk of users at a time (memory stays flat); loading
is COPY (binary for the big tables) into one transaction, so a build either replaces the
previous world completely or leaves it as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo import loaders
from mysetlist.demo import vocabulary as words
from mysetlist.demo.activity import ArtistSampler, Timeline, generate_activity
from mysetlist.demo.catalog import generate_catalog
from mysetlist.demo.population import generate_population

USERS_PER_CHUNK = 5000  # fixed: part of what makes a seed reproducible
DEFAULT_ARTISTS = 500
SHOWS_PER_ARTIST = 6
EVENTS_PER_SESSION = 4.5  # rough mean, browse events plus actions
BULK_LOAD_EVENTS = 300_000  # from about this many events, load into bare tables, then index

# Independent random streams, so changing one part of the generator leaves the others be.
_CATALOG_STREAM, _POPULATION_STREAM, _ACTIVITY_STREAM = 1, 2, 3


@dataclass(frozen=True)
class WorldSpec:
    """What to build. `artists`/`shows` default to 500/3000, scaled down for small user
    counts (one artist per ten users, at least two per genre); explicit values are honoured."""

    users: int = 5000
    days: int = 120  # history: users sign up and act from `days` ago until now
    future_days: int = 60  # shows are scheduled up to this far ahead
    seed: int = 42
    artists: int | None = None
    shows: int | None = None
    genres: int = 20  # at most len(vocabulary.GENRES)
    churn_share: float = 0.15  # share of users planted to churn inside the history
    mean_sessions_per_day: float = 0.5  # mean of the heavy-tailed activity levels
    taste_concentration: float = 0.3  # Dirichlet alpha: lower means narrower tastes
    events: bool = True  # False: platform tables and truth only, no event history
    # Load events into bare day tables, then index them on attach (needs an event table
    # holding nothing but demo events). None: when the world is big enough to gain.
    bulk_event_load: bool | None = None

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1 or self.future_days < 0 or self.seed < 0:
            raise ValueError("users and days must be >= 1, future_days and seed >= 0")
        if not 1 <= self.genres <= len(words.GENRES):
            raise ValueError(f"genres must be between 1 and {len(words.GENRES)}")
        if not 0.0 <= self.churn_share <= 1.0:
            raise ValueError("churn_share must be between 0 and 1")
        if self.mean_sessions_per_day <= 0 or self.taste_concentration <= 0:
            raise ValueError("mean_sessions_per_day and taste_concentration must be > 0")
        if (self.artists is not None and self.artists < 1) or (
            self.shows is not None and self.shows < 0
        ):
            raise ValueError("artists must be >= 1 and shows >= 0")

    @property
    def artist_count(self) -> int:
        if self.artists is not None:
            return self.artists
        return min(DEFAULT_ARTISTS, max(2 * self.genres, self.users // 10))

    @property
    def expected_events(self) -> int:
        """A rough size estimate (signups spread over the history halve the user-days)."""
        return int(self.users * self.days * 0.5 * self.mean_sessions_per_day * EVENTS_PER_SESSION)

    @property
    def show_count(self) -> int:
        return self.shows if self.shows is not None else SHOWS_PER_ARTIST * self.artist_count


@dataclass
class WorldSummary:
    users: int = 0
    churners: int = 0
    genres: int = 0
    artists: int = 0
    venues: int = 0
    songs: int = 0
    shows: int = 0
    completed_shows: int = 0
    setlist_songs: int = 0
    follows: int = 0
    votes: int = 0
    sessions: int = 0
    events: int = 0
    history_start: datetime | None = None
    as_of: datetime | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        rate = f", {self.events / self.seconds:,.0f} events/s" if self.seconds else ""
        return (
            f"{self.users:,} users ({self.churners:,} churn) · {self.artists:,} artists in "
            f"{self.genres} genres · {self.songs:,} songs · {self.shows:,} shows "
            f"({self.completed_shows:,} with setlists) · {self.follows:,} follows · "
            f"{self.votes:,} votes · {self.events:,} events in {self.sessions:,} sessions · "
            f"built in {self.seconds:.1f} s{rate}"
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("history_start", "as_of"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def _wants_bulk_load(spec: WorldSpec) -> bool:
    if spec.bulk_event_load is not None:
        return spec.bulk_event_load
    return spec.expected_events >= BULK_LOAD_EVENTS


def _rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *more]))


def _default_cipher() -> FieldCipher:
    from mysetlist.core.config import load_settings

    return FieldCipher(load_settings().effective_encryption_key)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("[bold]{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    with progress:
        yield progress


def build_world(
    database_url: str,
    spec: WorldSpec | None = None,
    *,
    progress: bool = False,
    now: datetime | None = None,
    cipher: FieldCipher | None = None,
) -> WorldSummary:
    """Build the synthetic world described by `spec` into the database at `database_url`.

    Replaces a previous demo world: the users, catalogue rows and truth recorded in
    `demo_truth` and all events with source 'demo' are deleted first (rows the demo did
    not create are kept), in the same transaction as the new world is loaded.

    `now` (default: the current time) is the world's present: history runs from `now -
    days` to `now`, shows are scheduled until `now + future_days`. Same spec and `now`,
    same world. `cipher` encrypts the emails (default: from the configured key).
    """
    spec = spec or WorldSpec()
    started = time.perf_counter()
    as_of = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    history_start = as_of - timedelta(days=spec.days)
    as_of_us = int(as_of.timestamp()) * 1_000_000
    start_us = int(history_start.timestamp()) * 1_000_000
    cipher = cipher or _default_cipher()
    summary = WorldSummary(history_start=history_start, as_of=as_of)
    timings = summary.timings

    def lap(name: str, since: float) -> float:
        now_t = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now_t - since
        return now_t

    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        _progress_bars(progress) as bars,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        t = time.perf_counter()
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        events_table_empty = loaders.remove_previous_world(cur)
        ids = loaders.allocate_id_bases(cur)
        t = lap("remove previous world", t)

        catalog = generate_catalog(
            _rng(spec.seed, _CATALOG_STREAM),
            genres=spec.genres,
            artists=spec.artist_count,
            shows=spec.show_count,
            history_start_us=start_us,
            as_of_us=as_of_us,
            future_days=spec.future_days,
            ids=ids,
        )
        pop = generate_population(
            _rng(spec.seed, _POPULATION_STREAM),
            users=spec.users,
            genres=len(catalog.genres),
            history_start_us=start_us,
            as_of_us=as_of_us,
            churn_share=spec.churn_share,
            mean_sessions_per_day=spec.mean_sessions_per_day,
            taste_concentration=spec.taste_concentration,
        )
        t = lap("generate catalog and population", t)
        loaders.load_catalog(cur, catalog)
        loaders.load_catalog_truth(cur, catalog)
        event_target = ""
        if spec.events:
            event_target = loaders.prepare_event_loading(
                cur,
                history_start - timedelta(days=1),
                as_of + timedelta(days=1),
                bulk=events_table_empty and _wants_bulk_load(spec),
            )
        t = lap("load catalog", t)

        sampler = ArtistSampler(catalog, len(catalog.genres))
        timeline = Timeline(start_us, as_of_us, spec.mean_sessions_per_day)
        users_bar = bars.add_task("users", total=spec.users)
        social_bar = bars.add_task("follows & votes", total=spec.users)
        events_bar = bars.add_task("events", total=spec.users, visible=spec.events)
        next_session, next_vote_id = 1, ids.setlist_votes
        for chunk_no, first in enumerate(range(0, spec.users, USERS_PER_CHUNK)):
            users = np.arange(first, min(first + USERS_PER_CHUNK, spec.users), dtype=np.int64)
            batch = generate_activity(
                _rng(spec.seed, _ACTIVITY_STREAM, chunk_no),
                pop,
                catalog,
                sampler,
                users,
                timeline,
                first_session_no=next_session,
            )
            t = lap("generate activity", t)
            loaders.load_users(cur, pop, users, batch.last_active_us, cipher)
            loaders.load_user_truth(cur, pop, catalog.genres, users)
            bars.advance(users_bar, len(users))
            t = lap("load users", t)
            loaders.load_follows_and_votes(cur, pop, catalog, batch, next_vote_id)
            bars.advance(social_bar, len(users))
            t = lap("load follows and votes", t)
            if spec.events:
                summary.events += loaders.load_events(cur, pop, batch, event_target)
                bars.advance(events_bar, len(users))
                t = lap("load events", t)
            next_session += batch.sessions
            next_vote_id += len(batch.vote_user)
            summary.sessions += batch.sessions
            summary.follows += len(batch.follow_user)
            summary.votes += len(batch.vote_user)

        if spec.events:
            index_bar = bars.add_task(
                "index events", total=1, visible=event_target == loaders.BULK_EVENT_TABLE
            )
            loaders.finish_event_loading(cur, event_target)
            bars.advance(index_bar)
            t = lap("index events", t)
        loaders.advance_sequences(cur)
        loaders.record_id_range(cur, "setlist_votes", ids.setlist_votes, next_vote_id - 1)
        summary.users = spec.users
        summary.churners = int(pop.churns.sum())
        summary.genres = len(catalog.genres)
        summary.artists = len(catalog.artist_ids)
        summary.venues = len(catalog.venue_ids)
        summary.songs = len(catalog.song_ids)
        summary.shows = len(catalog.show_ids)
        summary.completed_shows = len(np.unique(catalog.setlist_show))
        summary.setlist_songs = len(catalog.setlist_show)
        summary.seconds = time.perf_counter() - started
        cur.execute(
            "INSERT INTO demo_truth.world (seed, spec, history_start, as_of, summary)"
            " VALUES (%s, %s, %s, %s, %s)",
            (
                spec.seed,
                orjson.dumps(asdict(spec)).decode(),
                history_start,
                as_of,
                orjson.dumps(summary.as_json()).decode(),
            ),
        )
    summary.seconds = time.perf_counter() - started
    return summary
