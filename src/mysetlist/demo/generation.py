"""The whole world in memory, and its activity chunk by chunk (no database here).

Same spec, same present (`as_of`) and same id bases: same world, down to every event, which
is what lets `reload_events` regenerate one time window of an existing world.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from mysetlist.demo.activity import ActivityBatch, ArtistSampler, Timeline, generate_activity
from mysetlist.demo.catalog import Catalog, IdBases, generate_catalog
from mysetlist.demo.population import Population, generate_population
from mysetlist.demo.spec import WorldSpec

USERS_PER_CHUNK = 5000  # fixed: part of what makes a seed reproducible
# Independent random streams, so changing one part of the generator leaves the others be.
CATALOG_STREAM, POPULATION_STREAM, ACTIVITY_STREAM = 1, 2, 3


def _rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *more]))


def _unix_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


@dataclass
class GeneratedWorld:
    spec: WorldSpec
    catalog: Catalog
    population: Population
    sampler: ArtistSampler
    timeline: Timeline

    def activity_chunks(self) -> Iterator[tuple[NDArray[np.int64], ActivityBatch]]:
        """(user indexes, their activity) per chunk of users, sessions numbered across chunks."""
        next_session = 1
        for chunk_no, first in enumerate(range(0, self.spec.users, USERS_PER_CHUNK)):
            users = np.arange(first, min(first + USERS_PER_CHUNK, self.spec.users), dtype=np.int64)
            batch = generate_activity(
                _rng(self.spec.seed, ACTIVITY_STREAM, chunk_no),
                self.population,
                self.catalog,
                self.sampler,
                users,
                self.timeline,
                first_session_no=next_session,
            )
            next_session += batch.sessions
            yield users, batch


def generate_world(
    spec: WorldSpec, history_start: datetime, as_of: datetime, ids: IdBases
) -> GeneratedWorld:
    start_us, as_of_us = _unix_us(history_start), _unix_us(as_of)
    catalog = generate_catalog(
        _rng(spec.seed, CATALOG_STREAM),
        genres=spec.genres,
        artists=spec.artist_count,
        shows=spec.show_count,
        history_start_us=start_us,
        as_of_us=as_of_us,
        future_days=spec.future_days,
        ids=ids,
        archive_shows_per_artist=spec.archive_shows_per_artist,
    )
    population = generate_population(
        _rng(spec.seed, POPULATION_STREAM),
        users=spec.users,
        genres=len(catalog.genres),
        history_start_us=start_us,
        as_of_us=as_of_us,
        churn_share=spec.churn_share,
        mean_sessions_per_day=spec.mean_sessions_per_day,
        taste_concentration=spec.taste_concentration,
    )
    return GeneratedWorld(
        spec=spec,
        catalog=catalog,
        population=population,
        sampler=ArtistSampler(catalog, len(catalog.genres)),
        timeline=Timeline(start_us, as_of_us, spec.mean_sessions_per_day),
    )


def events_between(batch: ActivityBatch, start: datetime, end: datetime) -> ActivityBatch:
    """`batch` with only the events in [start, end) (rows untouched)."""
    keep = (batch.event_at >= _unix_us(start)) & (batch.event_at < _unix_us(end))
    return replace(
        batch,
        event_user=batch.event_user[keep],
        event_session=batch.event_session[keep],
        event_kind=batch.event_kind[keep],
        event_ref=batch.event_ref[keep],
        event_extra=batch.event_extra[keep],
        event_at=batch.event_at[keep],
    )
