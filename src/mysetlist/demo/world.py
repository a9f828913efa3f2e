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

import secrets
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

from mysetlist.core.db import Row, connect_sync, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo import loaders
from mysetlist.demo.catalog import IdBases
from mysetlist.demo.generation import events_between, generate_world
from mysetlist.demo.spec import WorldSpec

__all__ = [
    "WorldSpec",
    "WorldSummary",
    "build_world",
    "ensure_demo_operator",
    "reload_events",
    "world_present",
]

BULK_LOAD_EVENTS = 300_000  # from about this many events, load into bare tables, then index


@dataclass
class WorldSummary:
    """What `build_world` made (counts), when (`as_of`), and how long each step took."""

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
        rate = f", {self.events / self.seconds:,.0f} events/s" if self.events else ""
        present = f"as of {self.as_of:%Y-%m-%d %H:%M} UTC · " if self.as_of else ""
        return (
            f"{self.users:,} users ({self.churners:,} churn) · {self.artists:,} artists in "
            f"{self.genres} genres · {self.songs:,} songs · {self.shows:,} shows "
            f"({self.completed_shows:,} with setlists) · {self.follows:,} follows · "
            f"{self.votes:,} votes · {self.events:,} events in {self.sessions:,} sessions · "
            f"{present}built in {self.seconds:.1f} s{rate}"
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("history_start", "as_of"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def visitor_id_secret(cipher: FieldCipher, seed: int) -> bytes:
    """The secret a world's anonymous and session ids are derived from: keyed by the
    deployment's key, so ids are unguessable without it, and the same for the same seed, so
    the same spec and present still give the same world down to every id."""
    return cipher.lookup_hash(f"mysetlist.demo.visitor-ids:{seed}")


def world_present(moment: datetime) -> datetime:
    """The present of a world built at `moment`: its UTC hour (see `build_world`)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _wants_bulk_load(spec: WorldSpec) -> bool:
    if spec.bulk_event_load is not None:
        return spec.bulk_event_load
    return spec.expected_events >= BULK_LOAD_EVENTS


def _default_cipher() -> FieldCipher:
    from mysetlist.core.config import load_settings

    return FieldCipher(load_settings().effective_encryption_key)


@contextmanager
def _loading(database_url: str, progress: bool) -> Iterator[tuple[psycopg.Cursor[Row], Progress]]:
    """One transaction to load in (a build replaces the world whole or not at all), on a
    connection of its own, with progress bars on stderr when `progress`."""
    with (
        connect_sync(database_url, application_name="mysetlist-demo", autocommit=True) as conn,
        _progress_bars(progress) as bars,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        yield cur, bars


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


class _Laps:
    """Seconds spent per step, accumulated into `timings`."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.since = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - self.since
        self.since = now


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

    `now` (default: the current time), floored to the whole hour, is the world's present:
    history runs from `days` before it, shows are scheduled until `future_days` after it.
    Same spec and present, same world, down to every id and timestamp (the users' ids
    embed their signup time, so an unfloored clock would make every run's ids differ).
    `cipher` encrypts the emails (default: from the configured key).
    """
    spec = spec or WorldSpec()
    started = time.perf_counter()
    as_of = world_present(now or datetime.now(UTC))
    history_start = as_of - timedelta(days=spec.days)
    cipher = cipher or _default_cipher()
    id_secret = visitor_id_secret(cipher, spec.seed)
    summary = WorldSummary(history_start=history_start, as_of=as_of)
    lap = _Laps(summary.timings)

    with _loading(database_url, progress) as (cur, bars):
        loaders.ensure_truth_schema(cur)
        events_table_empty = loaders.remove_previous_world(cur)
        ids = loaders.allocate_id_bases(cur)
        lap("remove previous world")

        world = generate_world(spec, history_start, as_of, ids)
        catalog, pop = world.catalog, world.population
        lap("generate catalog and population")
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
        lap("load catalog")

        users_bar = bars.add_task("users", total=spec.users)
        social_bar = bars.add_task("follows & votes", total=spec.users)
        events_bar = bars.add_task("events", total=spec.users, visible=spec.events)
        next_vote_id = ids.setlist_votes
        for users, batch in world.activity_chunks():
            lap("generate activity")
            loaders.load_users(cur, pop, users, batch.last_active_us, cipher)
            loaders.load_user_truth(cur, pop, catalog.genres, users)
            bars.advance(users_bar, len(users))
            lap("load users")
            loaders.load_follows_and_votes(cur, pop, catalog, batch, next_vote_id)
            bars.advance(social_bar, len(users))
            lap("load follows and votes")
            if spec.events:
                summary.events += loaders.load_events(cur, pop, batch, event_target, id_secret)
                bars.advance(events_bar, len(users))
                lap("load events")
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
            lap("index events")
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
            read_sql(__package__, "world_record.sql"),
            {
                "seed": spec.seed,
                "spec": orjson.dumps(asdict(spec)).decode(),
                "history_start": history_start,
                "as_of": as_of,
                "summary": orjson.dumps(summary.as_json()).decode(),
                "id_secret": id_secret,
            },
        )
    summary.seconds = time.perf_counter() - started
    return summary


def reload_events(
    database_url: str, start: datetime, end: datetime, *, progress: bool = False
) -> int:
    """Regenerate the current demo world's events in [start, end) and load them again.

    The world (spec, seed, present, id ranges) is read from `demo_truth`; generation is
    deterministic, so these are the very events `build_world` made for that window. Demo
    events already in the window are deleted first (one transaction); the app tables are
    not touched. Useful to refill a window (after retention dropped it, or for an ETL
    benchmark's re-runs) without rebuilding the world. Returns the number of events loaded.
    """
    with _loading(database_url, progress) as (cur, bars):
        cur.execute(read_sql(__package__, "world_exists.sql"))
        has_truth = cur.fetchone()
        row = None
        if has_truth is not None and has_truth["present"]:
            cur.execute(read_sql(__package__, "world_read.sql"))
            row = cur.fetchone()
        if row is None:
            raise LookupError("no demo world in this database: run build_world first")
        spec = WorldSpec(**row["spec"])
        # A world built before visitor ids were keyed has none: its reloaded ids are new.
        secret = row["id_secret"]
        id_secret = bytes(secret) if secret is not None else secrets.token_bytes(32)
        cur.execute(read_sql(__package__, "catalog_ids_read.sql"))
        firsts = {str(r["table_name"]): int(r["first_id"]) for r in cur.fetchall()}
        ids = IdBases(**{k: v for k, v in firsts.items() if k in IdBases.__dataclass_fields__})
        world = generate_world(spec, row["history_start"], row["as_of"], ids)
        cur.execute(
            read_sql(__package__, "delete_demo_events_between.sql"), {"start": start, "end": end}
        )
        target = loaders.prepare_event_loading(cur, start, end, bulk=False)
        loaded = 0
        bar = bars.add_task("events", total=spec.users)
        for users, batch in world.activity_chunks():
            loaded += loaders.load_events(
                cur, world.population, events_between(batch, start, end), target, id_secret
            )
            bars.advance(bar, len(users))
    return loaded


def ensure_demo_operator(database_url: str, operator_id: str) -> None:
    """The operator the demo's token names exists as a user (its /api/me answers)."""
    with connect_sync(database_url, application_name="mysetlist-demo") as conn:
        conn.execute(read_sql(__package__, "operator_insert.sql"), (operator_id,))
        conn.commit()
