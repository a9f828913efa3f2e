"""Predicted setlists through the API and their scoring, on a small world built here."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service
from mysetlist.warehouse import pipeline
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.sql_files import statements

pytestmark = pytest.mark.db


@dataclass
class Artist:
    id: int
    songs: dict[str, int]  # title -> id
    upcoming: int


async def _id(conn: psycopg.AsyncConnection[Any], query: str, params: Any = None) -> int:
    row = await fetch_one_in(conn, query, params)
    assert row is not None
    return int(row["id"])


async def _catalogue(
    conn: psycopg.AsyncConnection[Any], name: str, titles: list[str]
) -> tuple[int, int, dict[str, int]]:
    """An artist, a venue in Oslo and the artist's songs: (artist, venue, title -> song id)."""
    artist = await _id(conn, "INSERT INTO app.artists (name) VALUES (%s) RETURNING id", (name,))
    venue = await _id(
        conn,
        "INSERT INTO app.venues (name, city, country) VALUES ('Hall', 'Oslo', 'NO') RETURNING id",
    )
    songs = {
        title: await _id(
            conn,
            "INSERT INTO app.songs (artist_id, title) VALUES (%s, %s) RETURNING id",
            (artist, title),
        )
        for title in titles
    }
    return artist, venue, songs


async def _artist(db: Database, name: str, past_shows: int = 6) -> Artist:
    """An artist with eight songs, `past_shows` completed shows that always open with
    'Opener' and play 'Core 1..4' (rotating one of 'Rare 1..3'), and one show tomorrow."""
    titles = ["Opener", "Core 1", "Core 2", "Core 3", "Core 4", "Rare 1", "Rare 2", "Rare 3"]
    async with db.transaction() as conn:
        artist, venue, songs = await _catalogue(conn, name, titles)
        for k in range(past_shows):
            show = await _id(
                conn,
                "INSERT INTO app.shows (artist_id, venue_id, starts_at, status, tour)"
                " VALUES (%s, %s, now() - %s * interval '3 days', 'completed',"
                " 'World Tour')"
                " RETURNING id",
                (artist, venue, past_shows - k),
            )
            played = ["Opener", "Core 1", "Core 2", "Core 3", "Core 4", f"Rare {k % 3 + 1}"]
            for position, title in enumerate(played, start=1):
                await conn.execute(
                    "INSERT INTO app.setlist_songs (show_id, position, song_id)"
                    " VALUES (%s, %s, %s)",
                    (show, position, songs[title]),
                )
        upcoming = await _id(
            conn,
            "INSERT INTO app.shows (artist_id, venue_id, starts_at, tour)"
            " VALUES (%s, %s, now() + interval '1 day', 'World Tour') RETURNING id",
            (artist, venue),
        )
    return Artist(artist, songs, upcoming)


async def _count(db: Database, show: int) -> int:
    row = await db.fetch_one(
        "SELECT count(*) AS n FROM analytics.setlist_predictions WHERE show_id = %s", (show,)
    )
    assert row is not None
    return int(row["n"])


async def test_upcoming_show_prediction_is_public_ranked_explained_and_stored(
    runtime: Runtime, api_url: str
) -> None:
    artist = await _artist(runtime.db, f"Predictable {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    async with httpx.AsyncClient() as client:
        first = await client.get(url)  # no token: anonymous
        second = await client.get(url)
    assert first.status_code == 200, first.text
    body = first.json()
    songs = body["prediction"]["songs"]
    # Six songs a night, but the sixth rotates among three: showing the five sure ones has
    # the higher expected F1 (2·5/(5+6) = .91 against 2·(5+1/3)/(6+6) = .89).
    assert body["prediction"]["predicted_length"] == 5
    assert body["prediction"]["model"] == "decayed_frequency"  # no ranker registered here
    top5 = {s["title"] for s in songs[:5]}
    assert top5 == {"Opener", "Core 1", "Core 2", "Core 3", "Core 4"}
    probabilities = [s["probability"] for s in songs]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 < p < 1 for p in probabilities)
    assert {s["song_id"] for s in songs} == set(artist.songs.values())
    opener = next(s for s in songs if s["title"] == "Opener")
    assert opener["reason"] in (
        "opened the last 6 shows",
        "played at each of the last 6 shows",
        "played at 6 of the last 6 shows",
        "played at 6 of 6 shows of the World Tour tour",
    )
    # Stored once: the second request reused the recent prediction.
    assert second.json()["prediction"] == body["prediction"]
    assert await _count(runtime.db, artist.upcoming) == 1


async def test_blend_with_the_crowd_lifts_what_fans_picked(runtime: Runtime, api_url: str) -> None:
    artist = await _artist(runtime.db, f"Crowded {uuid.uuid4().hex[:6]}")
    async with runtime.db.transaction() as conn:
        fans = [
            await service.create_user(conn, runtime.cipher, display_name=f"Fan {i}")
            for i in range(10)
        ]
        for fan in fans:
            await conn.execute(
                "INSERT INTO app.setlist_votes (user_id, show_id, song_id) VALUES (%s, %s, %s)",
                (fan, artist.upcoming, artist.songs["Rare 3"]),
            )
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    async with httpx.AsyncClient() as client:
        model = (await client.get(url)).json()["prediction"]
        blend = (await client.get(url, params={"blend": "crowd"})).json()["prediction"]
        bad = await client.get(url, params={"blend": "everyone"})
    assert bad.status_code == 422
    assert model["kind"] == "model"
    assert blend["kind"] == "blend"
    assert blend["voters"] == 10
    rare3_model = next(s for s in model["songs"] if s["title"] == "Rare 3")
    rare3_blend = next(s for s in blend["songs"] if s["title"] == "Rare 3")
    alpha = 10 / 30
    assert rare3_blend["probability"] == pytest.approx(
        (1 - alpha) * rare3_model["probability"] + alpha * 1.0, abs=1e-3
    )
    assert rare3_blend["reason"].startswith("picked by 100 % of 10 fans")


async def test_a_stored_prediction_cannot_change_after_the_show(
    runtime: Runtime, api_url: str, token_for: object
) -> None:
    artist = await _artist(runtime.db, f"Sealed {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    async with httpx.AsyncClient() as client:
        before = (await client.get(url)).json()["prediction"]
        # The show starts just after the prediction: from then on it is sealed.
        await runtime.db.fetch_all(
            "UPDATE app.shows SET starts_at = (SELECT max(made_at) + interval '1 millisecond'"
            " FROM analytics.setlist_predictions WHERE show_id = %(id)s) WHERE id = %(id)s"
            " RETURNING id",
            {"id": artist.upcoming},
        )
        for statement in (
            "INSERT INTO analytics.setlist_predictions"
            " (show_id, kind, model, history_shows, predicted_length, songs)"
            " VALUES (%s, 'model', 'forged', 6, 1, '[]')",
            # backdated to before the show: still refused, the show has started
            "INSERT INTO analytics.setlist_predictions"
            " (show_id, kind, model, made_at, history_shows, predicted_length, songs)"
            " VALUES (%s, 'model', 'forged', now() - interval '1 day', 6, 1, '[]')",
            "UPDATE analytics.setlist_predictions SET songs = '[]' WHERE show_id = %s",
            "DELETE FROM analytics.setlist_predictions WHERE show_id = %s",
        ):
            with pytest.raises(psycopg.errors.CheckViolation):
                async with runtime.db.transaction() as conn:
                    await conn.execute(statement, (artist.upcoming,))
        anonymous = await client.get(url)
        token = token_for(uuid.uuid4())  # type: ignore[operator]
        signed_in = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status_code == 404  # RLS: past shows' predictions are not public
    assert signed_in.status_code == 200
    assert signed_in.json()["prediction"] == before
    assert await _count(runtime.db, artist.upcoming) == 1


async def test_unknown_show_is_404(api_url: str) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{api_url}/api/shows/999999999/predicted-setlist")
        bad = await client.get(f"{api_url}/api/shows/0/predicted-setlist")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert bad.status_code == 422


def _ndcg(hits: list[bool], n: int) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(hits[:n]) if hit)
    return dcg / sum(1 / math.log2(r + 2) for r in range(n))


async def test_model_crowd_blend_and_fans_scored_by_hand(runtime: Runtime) -> None:
    """Played A, B, C. Model (predicted length 2): A .9, D .62, C .6, B .3, E .1. Fans:
    {A, B}, {A, B, E}, {B, C}. Crowd shares: B 1, A 2/3, C 1/3, E 1/3 -> B, A, C. Blend,
    a = 3/23: A .870, C .565, D .539, B .391, E .130. The model, the crowd and the blend
    show 2 songs (the model's length), each fan their picks: F1 = 2·hits / (shown + 3)."""
    db = runtime.db
    async with db.transaction() as conn:
        artist, venue, ids = await _catalogue(conn, "Scored", list("ABCDE"))
        show = await _id(
            conn,
            "INSERT INTO app.shows (artist_id, venue_id, starts_at) VALUES"
            " (%s, %s, now() + interval '1 day') RETURNING id",
            (artist, venue),
        )
        model = [("A", 0.9), ("D", 0.62), ("C", 0.6), ("B", 0.3), ("E", 0.1)]
        songs = (
            "[" + ",".join(f'{{"song_id": {ids[t]}, "probability": {p}}}' for t, p in model) + "]"
        )
        await conn.execute(
            "INSERT INTO analytics.setlist_predictions (show_id, kind, model, made_at,"
            " history_shows, predicted_length, songs) VALUES"
            " (%s, 'model', 'hand', now() - interval '2 days', 5, 2, %s)",
            (show, songs),
        )
        fans = []
        for picks in ("AB", "ABE", "BC"):
            fan = await service.create_user(conn, runtime.cipher, display_name=f"Fan {picks}")
            fans.append(fan)
            for title in picks:
                await conn.execute(
                    "INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)"
                    " VALUES (%s, %s, %s, now() - interval '3 days')",
                    (fan, show, ids[title]),
                )
        # The show is played.
        await conn.execute(
            "UPDATE app.shows SET starts_at = now() - interval '1 day', status = 'completed'"
            " WHERE id = %s",
            (show,),
        )
        for position, title in enumerate("ABC", start=1):
            await conn.execute(
                "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, %s, %s)",
                (show, position, ids[title]),
            )
    # The warehouse scores it (the nightly run's steps, over the last days).
    today = datetime.now(UTC).date()
    result = await pipeline.execute(
        runtime.database_url,
        EtlConfig(parallelism=2),
        request=pipeline.RunRequest(
            trigger="cli",
            mode="range",
            from_day=today - timedelta(days=2),
            to_day=today,
            steps=["setlist_prediction_scores", "voting_patterns_warehouse"],
        ),
    )
    assert result is not None
    rows = {
        r["predictor"]: r
        for r in await db.fetch_all(
            "SELECT * FROM analytics.setlist_prediction_scores WHERE show_id = %s", (show,)
        )
    }
    expected = {
        # predictor: (hits in the shown 2, hits in the top 3, ranked hit flags, recall@10)
        "model": (1, 2, [True, False, True], 1.0),
        "crowd": (2, 3, [True, True, True], 1.0),
        "blend": (2, 2, [True, True, False], 1.0),
    }
    assert set(rows) == set(expected)
    for predictor, (hits, hits_n, flags, recall) in expected.items():
        row = rows[predictor]
        assert row["songs_played"] == 3
        assert row["shown"] == 2
        assert row["hits"] == hits, predictor
        assert float(row["f1"]) == pytest.approx(2 * hits / (2 + 3), abs=1e-4), predictor
        assert float(row["f1_at_n"]) == pytest.approx(hits_n / 3, abs=1e-4), predictor
        assert float(row["ndcg"]) == pytest.approx(_ndcg(flags, 3), abs=1e-4), predictor
        assert float(row["recall_at_10"]) == pytest.approx(recall, abs=1e-4), predictor
    assert rows["crowd"]["voters"] == 3
    fan_rows = {
        str(r["user_id"]): r
        for r in await db.fetch_all(
            "SELECT * FROM analytics.setlist_fan_scores WHERE show_id = %s", (show,)
        )
    }
    assert [float(fan_rows[f]["f1"]) for f in fans] == pytest.approx(
        [4 / 5, 4 / 6, 4 / 5], abs=1e-4
    )
    assert [fan_rows[f]["hits"] for f in fans] == [2, 2, 2]
    # ... and the fans' F1 feeds voting_patterns_warehouse (user and show grains).
    patterns = {
        r["scope_id"]: r
        for r in await db.fetch_all(
            "SELECT scope_id, scored_predictions, mean_prediction_f1"
            " FROM analytics.voting_patterns_warehouse WHERE scope_id = ANY(%s)",
            ([*fans, str(show)],),
        )
    }
    assert float(patterns[fans[1]]["mean_prediction_f1"]) == pytest.approx(4 / 6, abs=1e-4)
    assert patterns[fans[1]]["scored_predictions"] == 1
    assert float(patterns[str(show)]["mean_prediction_f1"]) == pytest.approx(
        (4 / 5 + 4 / 6 + 4 / 5) / 3, abs=1e-4
    )


async def test_the_hourly_job_predicts_every_upcoming_show_once(runtime: Runtime) -> None:
    from mysetlist.ml.setlists.prediction_service import predict_upcoming

    known = await _artist(runtime.db, f"Touring {uuid.uuid4().hex[:6]}")
    newcomer = await _artist(runtime.db, f"Debut {uuid.uuid4().hex[:6]}", past_shows=0)
    predicted, skipped = await predict_upcoming(runtime.db)
    assert predicted >= 1
    assert skipped >= 1  # the newcomer has nothing to learn from
    assert await _count(runtime.db, known.upcoming) == 1
    assert await _count(runtime.db, newcomer.upcoming) == 0
    await predict_upcoming(runtime.db)  # nothing new played: the prediction stands
    assert await _count(runtime.db, known.upcoming) == 1


async def test_leaderboard_ranks_fans_by_their_scored_predictions(
    runtime: Runtime, api_url: str, token_for: object
) -> None:
    db = runtime.db
    artist = await _artist(db, f"Board {uuid.uuid4().hex[:6]}", past_shows=4)
    name = f"Oracle {uuid.uuid4().hex[:6]}"
    async with db.transaction() as conn:
        fan = await service.create_user(conn, runtime.cipher, display_name=name)
        shows = await fetch_all_in(
            conn,
            "SELECT id FROM app.shows WHERE artist_id = %s AND status = 'completed'"
            " ORDER BY starts_at",
            (artist.id,),
        )
        # On each played show the fan picked the opener (hit) and 'Rare 3' (a hit on the
        # third show only): F1 = 2 * hits / (2 picks + 6 songs played).
        for show in shows[:3]:
            for title in ("Opener", "Rare 3"):
                await conn.execute(
                    "INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)"
                    " SELECT %s, %s, %s, starts_at - interval '1 day' FROM app.shows"
                    " WHERE id = %s",
                    (fan, show["id"], artist.songs[title], show["id"]),
                )
        for statement in statements("setlist_prediction_scores"):
            await conn.execute(statement)
    async with httpx.AsyncClient() as client:
        # the leaderboard shows only fans who chose to be discoverable
        opted_in = await client.patch(
            f"{api_url}/api/me",
            json={"discoverable": True},
            headers={"Authorization": f"Bearer {token_for(fan)}"},  # type: ignore[operator]
        )
        assert opted_in.status_code == 200, opted_in.text
        anonymous = await client.get(f"{api_url}/api/setlists/leaderboard", params={"limit": 500})
        mine = await client.get(
            f"{api_url}/api/setlists/leaderboard",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {token_for(fan)}"},  # type: ignore[operator]
        )
        too_many = await client.get(f"{api_url}/api/setlists/leaderboard", params={"limit": 10**6})
    assert too_many.status_code == 422
    row = next(r for r in anonymous.json()["leaders"] if r["display_name"] == name)
    assert "user_id" not in row
    assert row["scored_shows"] == 3
    assert float(row["mean_f1"]) == pytest.approx((2 / 8 + 2 / 8 + 4 / 8) / 3, abs=1e-4)
    assert row["is_you"] is False
    assert next(r for r in mine.json()["leaders"] if r["display_name"] == name)["is_you"] is True


async def test_leaderboard_scores_model_crowd_and_fans_with_one_formula(
    runtime: Runtime, api_url: str
) -> None:
    """On three played shows (A, B, C, D, F) the model shows its predicted 4 songs A, B, C,
    E; the one fan picked exactly those, so the crowd (at the model's length) shows them
    too. One formula gives all three 2·3 / (4 + 5) = 2/3; the model scored at the true
    length (its top 5, A B C E D: 4 hits of 5 = .8, now `f1_at_n`) would not."""
    db = runtime.db
    name = f"Twin {uuid.uuid4().hex[:6]}"
    async with db.transaction() as conn:
        artist, venue, ids = await _catalogue(
            conn, f"Formula {uuid.uuid4().hex[:6]}", list("ABCDEFG")
        )
        fan = await service.create_user(conn, runtime.cipher, display_name=name)
        # the public leaderboard lists only fans who opted in (issue 15)
        await conn.execute("UPDATE app.users SET discoverable = true WHERE id = %s", (fan,))
        model = [("A", 0.9), ("B", 0.85), ("C", 0.8), ("E", 0.7), ("D", 0.6), ("F", 0.2)]
        songs = (
            "[" + ",".join(f'{{"song_id": {ids[t]}, "probability": {p}}}' for t, p in model) + "]"
        )
        shows = []
        for k in range(3):
            show = await _id(
                conn,
                "INSERT INTO app.shows (artist_id, venue_id, starts_at) VALUES"
                " (%s, %s, now() + %s * interval '1 day') RETURNING id",
                (artist, venue, k + 1),
            )
            shows.append(show)
            await conn.execute(
                "INSERT INTO analytics.setlist_predictions (show_id, kind, model, made_at,"
                " history_shows, predicted_length, songs) VALUES"
                " (%s, 'model', 'hand', now() - interval '2 days', 5, 4, %s)",
                (show, songs),
            )
            for title in "ABCE":
                await conn.execute(
                    "INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)"
                    " VALUES (%s, %s, %s, now() - interval '3 days')",
                    (fan, show, ids[title]),
                )
        for k, show in enumerate(shows):
            await conn.execute(
                "UPDATE app.shows SET starts_at = now() - %s * interval '1 day',"
                " status = 'completed' WHERE id = %s",
                (k + 1, show),
            )
            for position, title in enumerate("ABCDF", start=1):
                await conn.execute(
                    "INSERT INTO app.setlist_songs (show_id, position, song_id)"
                    " VALUES (%s, %s, %s)",
                    (show, position, ids[title]),
                )
        for statement in statements("setlist_prediction_scores"):
            await conn.execute(statement)
    async with httpx.AsyncClient() as client:
        leaders = (
            await client.get(f"{api_url}/api/setlists/leaderboard", params={"limit": 500})
        ).json()["leaders"]
    row = next(r for r in leaders if r["display_name"] == name)
    assert row["scored_shows"] == 3
    for column in ("mean_f1", "model_f1_same_shows", "crowd_f1_same_shows"):
        assert float(row[column]) == pytest.approx(2 * 3 / (4 + 5), abs=1e-4), column
    stored = await db.fetch_all(
        "SELECT predictor, f1, f1_at_n FROM analytics.setlist_prediction_scores"
        " WHERE show_id = ANY(%s) AND predictor = 'model'",
        (shows,),
    )
    assert {float(r["f1_at_n"]) for r in stored} == {0.8}  # the true length kept aside


async def test_the_trained_ranker_is_registered_and_serves_predictions(servers: Any) -> None:
    from mysetlist.ml.setlists.prediction_service import ensure_model_prediction
    from mysetlist.ml.setlists.ranker import L2_GRID
    from mysetlist.ml.setlists.training import train_setlist_ranker
    from tests.conftest import migrated_database

    with migrated_database(servers.admin_url, "mysetlist_setlist_ranker") as url:
        db = Database(url, max_size=2)
        await db.open()
        try:
            assert await train_setlist_ranker(db) is None  # nothing played yet
            artists = [await _artist(db, f"Ranked {k}", past_shows=10) for k in range(4)]
            registered = await train_setlist_ranker(db)
            assert registered is not None
            assert registered.activated
            version = registered.version
            assert (version.name, version.version, version.primary_metric) == (
                "setlist_ranker",
                1,
                "f1",
            )
            assert 0 < version.metrics["f1"] <= 1
            assert version.params["l2"] in L2_GRID
            assert set(version.params["validation_log_loss"]) == {str(v) for v in L2_GRID}
            async with db.transaction() as conn:
                await ensure_model_prediction(conn, artists[0].upcoming)
            stored = await db.fetch_one(
                "SELECT model, predicted_length, songs FROM analytics.setlist_predictions"
                " WHERE show_id = %s",
                (artists[0].upcoming,),
            )
            assert stored is not None
            assert stored["model"] == "setlist_ranker v1"
            # Show k played 'Rare (k % 3 + 1)': the ranker learned the rotation across the
            # artists, so show 10's rare song, Rare 2, joins the core five.
            top = {s["title"] for s in stored["songs"][:6]}
            assert top == {"Opener", "Core 1", "Core 2", "Core 3", "Core 4", "Rare 2"}
        finally:
            await db.close()


# The shared answer cache (ml/setlists/prediction_cache.py), through the API.


def _cache_key(runtime: Runtime, show: int, kind: str = "model") -> str:
    from mysetlist.ml.setlists.prediction_cache import prediction_cache

    return prediction_cache(runtime).key(show, kind)


async def _played_now(db: Database, artist: Artist) -> None:
    """Another completed show of the artist, played just now, with every song: the model's
    input changes (a new input state), and the hourly job sees the prediction as stale."""
    async with db.transaction() as conn:
        row = await fetch_one_in(conn, "SELECT venue_id FROM app.shows WHERE id = %s",
                                 (artist.upcoming,))  # fmt: skip
        assert row is not None
        show = await _id(
            conn,
            "INSERT INTO app.shows (artist_id, venue_id, starts_at, status, tour)"
            " VALUES (%s, %s, now(), 'completed', 'World Tour') RETURNING id",
            (artist.id, row["venue_id"]),
        )
        for position, song in enumerate(artist.songs.values(), start=1):
            await conn.execute(
                "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, %s, %s)",
                (show, position, song),
            )


async def _start_just_after_its_prediction(db: Database, show: int) -> None:
    await db.fetch_all(
        "UPDATE app.shows SET starts_at = (SELECT max(made_at) + interval '1 millisecond'"
        " FROM analytics.setlist_predictions WHERE show_id = %(id)s) WHERE id = %(id)s"
        " RETURNING id",
        {"id": show},
    )


async def test_the_cached_answer_is_the_uncached_one_and_is_served_from_the_cache(
    runtime: Runtime, api_url: str, token_for: object
) -> None:
    from mysetlist.core.auth import Claims
    from mysetlist.ml.setlists.prediction_cache import PredictionCache
    from mysetlist.ml.setlists.prediction_service import predicted_setlist

    artist = await _artist(runtime.db, f"Cached {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    user = uuid.uuid4()
    auth = {"Authorization": f"Bearer {token_for(user)}"}  # type: ignore[operator]
    key = _cache_key(runtime, artist.upcoming)
    async with httpx.AsyncClient() as client:
        first = await client.get(url, headers=auth)  # stored and cached
        assert first.status_code == 200, first.text
        assert 0 < await runtime.redis.pttl(key) <= 30_000  # ML_PREDICTED_SETLIST_CACHE_SECONDS
        second = await client.get(url, headers=auth)
        anonymous = await client.get(url)  # an upcoming show: public, from the same entry
    uncached = await predicted_setlist(
        runtime.db, PredictionCache(None, "unused", 0), artist.upcoming, blend=False,
        claims=Claims(user_id=str(user), role="authenticated", is_admin=False, raw={}),
    )  # fmt: skip
    assert first.json() == second.json() == anonymous.json() == uncached
    assert first.headers["content-type"] == "application/json"

    # What the API answers comes from the entry: a marked entry is what a caller gets.
    raw = await runtime.redis.get(key)
    assert raw is not None
    entry = orjson.loads(raw)
    entry["answer"]["prediction"]["model"] = "from the cache"
    await runtime.redis.set(key, orjson.dumps(entry), px=30_000)
    async with httpx.AsyncClient() as client:
        marked = await client.get(url, headers=auth)
    assert marked.json()["prediction"]["model"] == "from the cache"


async def test_a_new_prediction_replaces_the_cached_one(runtime: Runtime, api_url: str) -> None:
    from mysetlist.ml.setlists.prediction_cache import prediction_cache
    from mysetlist.ml.setlists.prediction_service import predict_upcoming

    artist = await _artist(runtime.db, f"Refreshed {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    async with httpx.AsyncClient() as client:
        before = (await client.get(url)).json()["prediction"]
        await _played_now(runtime.db, artist)
        cached = (await client.get(url)).json()["prediction"]  # within the bound: cached
        # The hourly job stores the new prediction and drops the cached answer.
        await predict_upcoming(runtime.db, cache=prediction_cache(runtime))
        after = (await client.get(url)).json()["prediction"]
    assert before["history_shows"] == cached["history_shows"] == 6
    assert after["history_shows"] == 7
    assert await _count(runtime.db, artist.upcoming) == 2
    assert await runtime.redis.exists(_cache_key(runtime, artist.upcoming)) == 1  # re-cached


async def test_a_show_that_started_is_not_served_from_the_cache_as_upcoming(
    runtime: Runtime, api_url: str, token_for: object
) -> None:
    artist = await _artist(runtime.db, f"Started {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    auth = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}  # type: ignore[operator]
    async with httpx.AsyncClient() as client:
        cached = await client.get(url)  # anonymous, cached while upcoming
        assert cached.json()["upcoming"] is True
        await _start_just_after_its_prediction(runtime.db, artist.upcoming)
        assert await runtime.redis.exists(_cache_key(runtime, artist.upcoming)) == 1
        anonymous = await client.get(url)
        signed_in = await client.get(url, headers=auth)
    assert anonymous.status_code == 404  # RLS: a started show's prediction is not public
    assert signed_in.status_code == 200
    assert signed_in.json()["upcoming"] is False  # the show as it is now, not as cached
    assert signed_in.json()["prediction"] == cached.json()["prediction"]


async def test_rls_decides_on_every_read_from_the_cache(
    runtime: Runtime, api_url: str, token_for: object
) -> None:
    """A fan may see a past show's prediction and caches that answer; a visitor, whom RLS
    hides it from, must not get it from the cache."""
    artist = await _artist(runtime.db, f"Hidden {uuid.uuid4().hex[:6]}")
    url = f"{api_url}/api/shows/{artist.upcoming}/predicted-setlist"
    auth = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}  # type: ignore[operator]
    async with httpx.AsyncClient() as client:
        assert (await client.get(url, headers=auth)).status_code == 200  # predicted, upcoming
        await _start_just_after_its_prediction(runtime.db, artist.upcoming)
        await runtime.redis.delete(_cache_key(runtime, artist.upcoming))
        fan = await client.get(url, headers=auth)  # caches the started show's answer
        assert fan.status_code == 200
        assert fan.json()["upcoming"] is False
        assert await runtime.redis.exists(_cache_key(runtime, artist.upcoming)) == 1
        anonymous = await client.get(url)
    assert anonymous.status_code == 404
