"""Attack family: anonymous reads that make the server write (issue 15, item 8).

1,213 anonymous `GET /api/shows/{id}/predicted-setlist?blend=crowd` in 10 s stored 1,213 rows
in the append-only `analytics.setlist_predictions`. A prediction is now stored once per
(show, kind, input state) and served from there, and anonymous public reads are limited per
client IP. Against the real API, PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mysetlist.core.config import Settings
from mysetlist.core.db import fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service as platform
from tests.conftest import serve_app

pytestmark = pytest.mark.db
READS = 60


@dataclass
class Show:
    id: int
    songs: list[int]


async def _upcoming_show(runtime: Runtime) -> Show:
    """An artist with four played shows (setlists) and one show tomorrow."""
    tag = uuid.uuid4().hex[:6]
    async with runtime.db.transaction() as conn:

        async def one(query: str, params: Any = None) -> int:
            row = await fetch_one_in(conn, query, params)
            assert row is not None
            return int(row["id"])

        artist = await one("INSERT INTO app.artists (name) VALUES (%s) RETURNING id", (tag,))
        venue = await one(
            "INSERT INTO app.venues (name, city, country) VALUES ('Hall', 'Oslo', 'NO')"
            " RETURNING id"
        )
        songs = [
            await one(
                "INSERT INTO app.songs (artist_id, title) VALUES (%s, %s) RETURNING id",
                (artist, f"Song {n}"),
            )
            for n in range(6)
        ]
        for k in range(4):
            played = await one(
                "INSERT INTO app.shows (artist_id, venue_id, starts_at, status)"
                " VALUES (%s, %s, now() - %s * interval '3 days', 'completed') RETURNING id",
                (artist, venue, 4 - k),
            )
            for position, song in enumerate([*songs[:4], songs[4 + k % 2]], start=1):
                await conn.execute(
                    "INSERT INTO app.setlist_songs (show_id, position, song_id)"
                    " VALUES (%s, %s, %s)",
                    (played, position, song),
                )
        show = await one(
            "INSERT INTO app.shows (artist_id, venue_id, starts_at)"
            " VALUES (%s, %s, now() + interval '1 day') RETURNING id",
            (artist, venue),
        )
    return Show(show, songs)


async def _rows(runtime: Runtime, show: int, kind: str) -> int:
    row = await runtime.db.fetch_one(
        "SELECT count(*) AS n FROM analytics.setlist_predictions WHERE show_id = %s AND kind = %s",
        (show, kind),
    )
    assert row is not None
    return int(row["n"])


async def _vote(runtime: Runtime, show: Show, song: int) -> str:
    async with runtime.db.transaction() as conn:
        fan = await platform.create_user(conn, runtime.cipher, display_name="Voter")
        await conn.execute(
            "INSERT INTO app.setlist_votes (user_id, show_id, song_id) VALUES (%s, %s, %s)",
            (fan, show.id, song),
        )
    return fan


async def _bound_passed(runtime: Runtime, show: Show) -> None:
    """What ML_PREDICTED_SETLIST_CACHE_SECONDS brings: the shared cached answer is gone, so
    the next read looks at the inputs again (ml/setlists/prediction_cache.py)."""
    from mysetlist.ml.setlists.prediction_cache import prediction_cache

    await prediction_cache(runtime).forget([show.id])


async def _read_many(url: str, n: int, **params: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(client.get(url, params=params) for _ in range(n))))


async def test_repeated_anonymous_reads_store_at_most_one_prediction(
    runtime: Runtime, api_url: str
) -> None:
    show = await _upcoming_show(runtime)
    url = f"{api_url}/api/shows/{show.id}/predicted-setlist"
    await _vote(runtime, show, show.songs[5])
    # Concurrent, as the attack was: the same input state is stored once, not per request.
    crowd = await _read_many(url, READS, blend="crowd")
    model = await _read_many(url, READS)
    assert {r.status_code for r in crowd + model} == {200}
    assert await _rows(runtime, show.id, "blend") == 1
    assert await _rows(runtime, show.id, "model") == 1
    # Every reader got the one stored prediction.
    assert len({r.json()["prediction"]["made_at"] for r in crowd}) == 1
    assert crowd[0].json()["prediction"]["voters"] == 1


async def test_a_new_vote_stores_a_new_blend_and_reads_then_reuse_it(
    runtime: Runtime, api_url: str
) -> None:
    show = await _upcoming_show(runtime)
    url = f"{api_url}/api/shows/{show.id}/predicted-setlist"
    first = (await _read_many(url, 5, blend="crowd"))[0].json()["prediction"]
    assert first["voters"] == 0
    voter = await _vote(runtime, show, show.songs[5])  # the input changed
    await _bound_passed(runtime, show)
    second = await _read_many(url, 5, blend="crowd")
    assert await _rows(runtime, show.id, "blend") == 2
    assert {r.json()["prediction"]["voters"] for r in second} == {1}
    lifted = next(
        s for s in second[0].json()["prediction"]["songs"] if s["song_id"] == show.songs[5]
    )
    before = next(s for s in first["songs"] if s["song_id"] == show.songs[5])
    assert lifted["probability"] > before["probability"]
    # A changed vote (same count) is a changed input too.
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "UPDATE app.setlist_votes SET song_id = %s WHERE user_id = %s",
            (show.songs[0], voter),
        )
    await _bound_passed(runtime, show)
    await _read_many(url, 5, blend="crowd")
    assert await _rows(runtime, show.id, "blend") == 3
    # Back to a state already stored (the vote withdrawn): served from the stored row.
    async with runtime.db.transaction() as conn:
        await conn.execute("DELETE FROM app.setlist_votes WHERE user_id = %s", (voter,))
    await _bound_passed(runtime, show)
    again = (await _read_many(url, 5, blend="crowd"))[0].json()["prediction"]
    assert await _rows(runtime, show.id, "blend") == 3
    assert again == first
    # The model's inputs did not change: still one model prediction.
    assert await _rows(runtime, show.id, "model") == 1


async def test_a_newly_played_show_stores_a_new_model_prediction(
    runtime: Runtime, api_url: str
) -> None:
    show = await _upcoming_show(runtime)
    url = f"{api_url}/api/shows/{show.id}/predicted-setlist"
    first = (await _read_many(url, 5))[0].json()["prediction"]
    assert first["history_shows"] == 4
    # The artist plays another show before this one: the model's input changed.
    async with runtime.db.transaction() as conn:
        played = await fetch_one_in(
            conn,
            "INSERT INTO app.shows (artist_id, venue_id, starts_at, status)"
            " SELECT artist_id, venue_id, now() - interval '1 hour', 'completed'"
            " FROM app.shows WHERE id = %s RETURNING id",
            (show.id,),
        )
        assert played is not None
        for position, song in enumerate(show.songs, start=1):
            await conn.execute(
                "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, %s, %s)",
                (played["id"], position, song),
            )
    await _bound_passed(runtime, show)
    second = await _read_many(url, 5)
    assert await _rows(runtime, show.id, "model") == 2
    assert {r.json()["prediction"]["history_shows"] for r in second} == {5}


async def test_no_prediction_is_added_once_the_show_has_started(
    runtime: Runtime, api_url: str, token_for: Any
) -> None:
    show = await _upcoming_show(runtime)
    url = f"{api_url}/api/shows/{show.id}/predicted-setlist"
    await _read_many(url, 3, blend="crowd")
    # The show starts just after its predictions were made.
    await runtime.db.fetch_all(
        "UPDATE app.shows SET starts_at = (SELECT max(made_at) + interval '1 millisecond'"
        " FROM analytics.setlist_predictions WHERE show_id = %(id)s) WHERE id = %(id)s"
        " RETURNING id",
        {"id": show.id},
    )
    await _vote(runtime, show, show.songs[5])  # a late vote changes the crowd's input
    headers = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
    async with httpx.AsyncClient() as client:
        for params in ({"blend": "crowd"}, {}):
            r = await client.get(url, params=params, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["upcoming"] is False
    assert await _rows(runtime, show.id, "blend") == 1
    assert await _rows(runtime, show.id, "model") == 1


async def test_anonymous_reads_are_limited_per_address_with_retry_after(
    runtime: Runtime,
    settings: Settings,
    database_url: str,
    redis_url: str,
    token_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mysetlist.api import create_app

    show = await _upcoming_show(runtime)
    monkeypatch.setenv("ML_RATE_LIMIT_ANONYMOUS_READS", "5/minute")
    with serve_app(create_app(settings, database_url, redis_url)) as base:
        url = f"{base}/api/shows/{show.id}/predicted-setlist"
        async with httpx.AsyncClient() as client:
            # one anonymous caller (loopback): the predicted setlist and the leaderboard
            # share its budget
            statuses = [(await client.get(url)).status_code for _ in range(4)]
            statuses.append((await client.get(f"{base}/api/setlists/leaderboard")).status_code)
            refused = await client.get(url, params={"blend": "crowd"})
            board = await client.get(f"{base}/api/setlists/leaderboard")
            signed_in = await client.get(
                url, headers={"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
            )
    assert statuses == [200] * 5
    for r in (refused, board):
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert signed_in.status_code == 200  # the limit is on anonymous reads
    # The refused read wrote nothing.
    assert await _rows(runtime, show.id, "blend") == 0
