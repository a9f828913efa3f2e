"""Training and serving read a user's interactions by one definition: the row the API
scores a user by is that user's rows of the matrix the model was trained on, whoever asks
(the fan, an operator, a service token), on a world with every kind of interaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from mysetlist.core.auth import Claims, TokenVerifier, mint_token
from mysetlist.core.config import Settings
from mysetlist.core.db import Row, fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.recommendations.service import user_history
from mysetlist.ml.recommendations.training import interaction_rows
from mysetlist.platform import service as platform

pytestmark = pytest.mark.db


@dataclass
class World:
    artists: list[int]
    fan: str
    other: str
    erased: str


async def _id(conn: Any, query: str, params: tuple[Any, ...]) -> int:
    row = await fetch_one_in(conn, query + " RETURNING id", params)
    assert row is not None
    return int(row["id"])


@pytest.fixture(scope="module")
async def world(runtime: Runtime) -> World:
    now = datetime.now(UTC)
    async with runtime.db.transaction() as conn:
        artists = [
            await _id(conn, "INSERT INTO app.artists (name) VALUES (%s)", (f"Band {n}",))
            for n in range(4)
        ]
        venue = await _id(
            conn, "INSERT INTO app.venues (name, city, country) VALUES ('Hall', 'Oslo', 'NO')", ()
        )
        shows = [
            await _id(
                conn,
                "INSERT INTO app.shows (artist_id, venue_id, starts_at) VALUES (%s, %s, %s)",
                (artist, venue, now + timedelta(days=5)),
            )
            for artist in artists[:3]
        ]
        songs = [
            await _id(conn, "INSERT INTO app.songs (artist_id, title) VALUES (%s, %s)", (a, t))
            for a, t in ((artists[0], "One"), (artists[0], "Two"), (artists[1], "Three"))
        ]
        fan, other, erased = [
            await platform.create_user(conn, runtime.cipher, display_name=name)
            for name in ("fan", "other", "erased")
        ]
        for user, artist in ((fan, artists[0]), (other, artists[1]), (erased, artists[0])):
            await conn.execute(
                "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)", (user, artist)
            )
        for user, show, song in (
            (fan, shows[0], songs[0]), (fan, shows[0], songs[1]),  # one show: counts once
            (fan, shows[1], songs[2]), (other, shows[1], songs[2]),
        ):  # fmt: skip
            await conn.execute(
                "INSERT INTO app.setlist_votes (user_id, show_id, song_id) VALUES (%s, %s, %s)",
                (user, show, song),
            )
        events = [
            (fan, "artist_view", {"artist_id": str(artists[2])}, now),
            (fan, "artist_view", {"artist_id": artists[2]}, now),
            (fan, "show_view", {"show_id": str(shows[1])}, now),
            (fan, "attend", {"show_id": str(shows[2])}, now),
            # not counted: no such artist, not a whole number, older than the window, not a kind
            (fan, "artist_view", {"artist_id": "999999999999"}, now),
            (fan, "show_view", {"show_id": "1e3"}, now),
            (fan, "artist_view", {"artist_id": str(artists[3])}, now - timedelta(days=400)),
            (fan, "page_view", {"artist_id": str(artists[3])}, now),
            (other, "artist_view", {"artist_id": str(artists[3])}, now),
            (erased, "artist_view", {"artist_id": str(artists[3])}, now),
        ]
        for user, kind, properties, at in events:
            await conn.execute(
                "INSERT INTO analytics.user_events (user_id, event_type, properties, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (user, kind, Jsonb(properties), at),
            )
        await conn.execute("UPDATE app.users SET deleted_at = now() WHERE id = %s", (erased,))
    return World(artists, fan, other, erased)


def _claims(settings: Settings, user: str, **kind: Any) -> Claims:
    return TokenVerifier(settings).verify(mint_token(settings, user, **kind))


def _cells(rows: list[Row]) -> dict[int, float]:
    return {int(r["item_id"]): float(r["weight"]) for r in rows}


async def test_serving_reads_each_users_rows_of_the_training_matrix(
    runtime: Runtime, settings: Settings, world: World
) -> None:
    """Fails if serving defines a user's interactions apart from training (a weight, a kind
    of interaction or a filter in one only), or if the caller's role hides part of them."""
    ml = load_ml_settings()
    async with runtime.db.transaction() as conn:  # training reads as the owner, every user
        training = await interaction_rows(conn, ml)
    a = world.artists
    # The fan's row by hand (default weights): follow 4 + votes on one show 2; votes 2 +
    # show view 0.5; two artist views 0.5 each + attending 5. Not vacuous: every kind counts.
    expected = {
        world.fan: {a[0]: 6.0, a[1]: 2.5, a[2]: 6.0},
        world.other: {a[1]: 4.0 + 2.0, a[3]: 0.5},
        world.erased: {},
    }
    for user, cells in expected.items():
        trained = [r for r in training if r["user_id"] == user]
        assert _cells(trained) == cells, user
        askers = {
            "operator": _claims(settings, str(uuid.uuid4()), admin=True),
            "service": _claims(settings, str(uuid.uuid4()), role="service_role"),
        }
        if user != world.erased:
            askers["the fan"] = _claims(settings, user)
        for asker, claims in askers.items():
            served = await user_history(runtime.db, claims, ml, user)
            assert sorted(served, key=str) == sorted(trained, key=str), (user, asker)


async def test_a_fan_reads_no_one_elses_history_even_when_asking_for_it(
    runtime: Runtime, settings: Settings, world: World
) -> None:
    # The route refuses first (403); the database refuses too, under the fan's own role.
    fan = _claims(settings, world.fan)
    assert await user_history(runtime.db, fan, load_ml_settings(), world.other) == []
