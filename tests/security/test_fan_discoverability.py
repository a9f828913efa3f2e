"""Attack family: reading other fans who did not agree to be found (issue 15, item 7).

Similar fans (`POST /api/analytics/recommendations`) returned every neighbour's id, name and
followed artists, read as the table owner; the public setlist leaderboard showed every fan
with 3+ scored shows. Both are opt-in now (`app.users.discoverable`, set through
`PATCH /api/me`), the rule is in the database (the fan directory views and the leaderboard
view), the similar-fans read runs under the caller's own role, and fans never get another
fan's id. Against the real API, PostgreSQL and Redis, with the recommender trained by the real
training code on a planted world of two taste groups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.db import fetch_all_in, fetch_one_in
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import load_ml_settings
from mysetlist.ml.recommendations import service as recommendation_service
from mysetlist.ml.recommendations.training import MODEL_NAME, train_recommenders
from mysetlist.platform import service as platform
from mysetlist.warehouse.sql_files import statements

pytestmark = pytest.mark.db
SIMILAR = "/api/analytics/recommendations"
LEADERBOARD = "/api/setlists/leaderboard"
FANS = 12
ARTISTS = 8


@dataclass
class Fan:
    id: str
    name: str
    discoverable: bool
    follows: set[int]


@dataclass
class World:
    rock: list[Fan]
    pop: list[Fan]
    artist_names: dict[int, str]

    @property
    def fans(self) -> list[Fan]:
        return self.rock + self.pop


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def world(runtime: Runtime) -> Any:
    """Two taste groups of fans (even-numbered fans chose to be discoverable), and the
    recommender trained on them made the active version (restored afterwards)."""
    tag = uuid.uuid4().hex[:6]
    names: dict[int, str] = {}
    groups: dict[str, list[Fan]] = {"rock": [], "pop": []}
    async with runtime.db.transaction() as conn:
        for group in groups:
            artists = []
            for n in range(ARTISTS):
                name = f"{group.title()} {tag} {n}"
                row = await fetch_one_in(
                    conn,
                    "INSERT INTO app.artists (name, genres) VALUES (%s, %s) RETURNING id",
                    (name, [f"{group}-{tag}"]),
                )
                assert row is not None
                artists.append(int(row["id"]))
                names[int(row["id"])] = name
            for n in range(FANS):
                name = f"{group}-{tag}-{n}"
                uid = await platform.create_user(conn, runtime.cipher, display_name=name)
                mine = {artists[(n + k) % ARTISTS] for k in range(5)}
                for artist in mine:
                    await platform.follow(conn, uid, artist)
                await conn.execute(
                    "UPDATE app.users SET discoverable = %s WHERE id = %s", (n % 2 == 0, uid)
                )
                groups[group].append(Fan(uid, name, n % 2 == 0, mine))
    previous = await runtime.db.fetch_one(
        "SELECT id FROM analytics.ml_models WHERE name = %s AND active", (MODEL_NAME,)
    )
    registered = await train_recommenders(runtime.db, load_ml_settings())
    assert registered is not None
    if not registered.activated:  # another module's version scored better on its own data
        await _activate(runtime, registered.version.id)
    recommendation_service._active = None  # the API loads the active version on next use
    yield World(groups["rock"], groups["pop"], names)
    if previous is not None and not registered.activated:
        await _activate(runtime, int(previous["id"]))
    recommendation_service._active = None  # nor does a later module get this one cached


async def _activate(runtime: Runtime, model_id: int) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "UPDATE analytics.ml_models SET active = false WHERE name = %s AND active",
            (MODEL_NAME,),
        )
        await conn.execute(
            "UPDATE analytics.ml_models SET active = true WHERE id = %s", (model_id,)
        )


async def _similar(client: httpx.AsyncClient, token: str, **body: Any) -> list[dict[str, Any]]:
    r = await client.post(SIMILAR, json={"limit": 100, **body}, headers=_auth(token))
    assert r.status_code == 200, r.text
    similar: list[dict[str, Any]] = r.json()["similar_users"]
    return similar


async def test_a_fan_who_did_not_opt_in_never_appears_in_another_fans_similar_fans(
    api_url: str, runtime: Runtime, world: World, token_for: Any
) -> None:
    hidden = {f.name for f in world.fans if not f.discoverable}
    everyone = await runtime.db.fetch_all("SELECT id::text AS id FROM app.users")
    async with httpx.AsyncClient(base_url=api_url) as client:
        for asker in (world.rock[1], world.rock[2], world.pop[3]):
            r = await client.post(SIMILAR, json={"limit": 100}, headers=_auth(token_for(asker.id)))
            assert r.status_code == 200, r.text
            similar = r.json()["similar_users"]
            names = {s["display_name"] for s in similar}
            # not vacuous: the asker's discoverable group mates are found
            group = world.rock if asker in world.rock else world.pop
            assert {f.name for f in group if f.discoverable and f is not asker} <= names
            assert not names & hidden
            # every fan shown chose to be (other test modules' fans included)
            shy = await runtime.db.fetch_all(
                "SELECT n FROM unnest(%s::text[]) AS n WHERE NOT EXISTS"
                " (SELECT 1 FROM app.users u WHERE u.display_name = n AND u.discoverable)",
                (list(names),),
            )
            assert shy == []
            # no other fan's id anywhere in the answer, in any field
            assert all("user_id" not in s for s in similar)
            for other in everyone:
                if other["id"] != asker.id:
                    assert other["id"] not in r.text


async def test_opting_in_and_out_takes_effect_at_once(
    api_url: str, world: World, token_for: Any
) -> None:
    asker, shy = world.rock[2], world.rock[3]
    assert not shy.discoverable
    async with httpx.AsyncClient(base_url=api_url) as client:
        before = await _similar(client, token_for(asker.id))
        assert shy.name not in {s["display_name"] for s in before}
        opted_in = await client.patch(
            "/api/me", json={"discoverable": True}, headers=_auth(token_for(shy.id))
        )
        assert opted_in.status_code == 200, opted_in.text
        assert opted_in.json()["discoverable"] is True
        found = await _similar(client, token_for(asker.id))  # the neighbour ranking is cached
        opted_out = await client.patch(
            "/api/me", json={"discoverable": False}, headers=_auth(token_for(shy.id))
        )
        assert opted_out.status_code == 200, opted_out.text
        after = await _similar(client, token_for(asker.id))
        me = await client.get("/api/me", headers=_auth(token_for(shy.id)))
    assert shy.name in {s["display_name"] for s in found}
    assert shy.name not in {s["display_name"] for s in after}
    assert me.json()["discoverable"] is False


async def test_the_setting_takes_only_a_boolean_from_the_fan_themself(
    api_url: str, runtime: Runtime, world: World, token_for: Any
) -> None:
    fan = world.pop[5]
    async with httpx.AsyncClient(base_url=api_url) as client:
        refused = [
            await client.patch("/api/me", json=body, headers=_auth(token_for(fan.id)))
            for body in (
                {"discoverable": "yes"},
                {"discoverable": 1},
                {},
                {"discoverable": True, "id": world.pop[0].id},
                {"discoverable": True, "user_id": world.pop[0].id},
            )
        ]
        anonymous = await client.patch("/api/me", json={"discoverable": True})
        ghost = await client.patch(
            "/api/me", json={"discoverable": True}, headers=_auth(token_for(uuid.uuid4()))
        )
    for r in refused:
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert anonymous.status_code == 401
    assert ghost.status_code == 404
    row = await runtime.db.fetch_one("SELECT discoverable FROM app.users WHERE id = %s", (fan.id,))
    assert row is not None
    assert row["discoverable"] is False
    # In the database a fan may set only their own flag: another fan's row is out of reach.
    async with runtime.db.as_user(fan.id) as conn:
        cur = await conn.execute(
            "UPDATE app.users SET discoverable = true WHERE id = %s", (world.pop[1].id,)
        )
        assert cur.rowcount == 0


async def test_similar_fans_are_read_under_the_callers_role(
    api_url: str, runtime: Runtime, world: World, token_for: Any, claims_for: Any
) -> None:
    """Fails if the service reads as the owner: the asking fan is not discoverable, so only
    a read with the asker's own claims sees the asker's follows, and the shared artists
    (the asker's follows intersected with each neighbour's) come out right only then."""
    asker = world.rock[1]
    assert not asker.discoverable
    by_name = {f.name: f for f in world.fans}
    async with httpx.AsyncClient(base_url=api_url) as client:
        similar = await _similar(client, token_for(asker.id))
    mates = [s for s in similar if s["display_name"] in by_name]
    assert mates
    for s in mates:
        expected = sorted(
            world.artist_names[a] for a in asker.follows & by_name[s["display_name"]].follows
        )
        assert s["shared_artists"] == expected, s
    # The rule holds in the database itself, for any query a route could make.
    other_hidden, other_shown = world.rock[3], world.rock[4]
    async with runtime.db.as_caller(claims_for(asker.id)) as conn:
        raw = await fetch_all_in(
            conn, "SELECT user_id FROM app.follows WHERE user_id = ANY(%s::uuid[])",
            ([other_hidden.id, other_shown.id],),
        )  # fmt: skip
        directory = await fetch_all_in(
            conn, "SELECT user_id::text AS user_id FROM app.fan_directory_follows"
            " WHERE user_id = ANY(%s::uuid[])",
            ([other_hidden.id, other_shown.id, asker.id],),
        )  # fmt: skip
        names = await fetch_all_in(conn, "SELECT user_id::text AS user_id FROM app.fan_directory")
        profiles = await fetch_all_in(conn, "SELECT id FROM app.users")
    assert raw == []  # app.follows stays own-rows-only
    assert {r["user_id"] for r in directory} == {other_shown.id, asker.id}
    visible = {r["user_id"] for r in names}
    assert asker.id in visible
    assert other_shown.id in visible
    assert other_hidden.id not in visible
    assert {str(r["id"]) for r in profiles} == {asker.id}  # app.users too
    # Without claims (the owner role's view of these views) the asker is not there.
    async with runtime.db.transaction() as conn:
        ownerless = await fetch_all_in(
            conn, "SELECT user_id FROM app.fan_directory_follows WHERE user_id = %s", (asker.id,)
        )
    assert ownerless == []
    # Anonymous callers read no directory at all.
    for view in ("app.fan_directory", "app.fan_directory_follows"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with runtime.db.as_role("anon", {"role": "anon"}) as conn:
                await conn.execute(f"SELECT * FROM {view}")


async def test_operators_see_every_similar_fan_with_ids(
    api_url: str, world: World, token_for: Any
) -> None:
    subject = world.rock[1]
    async with httpx.AsyncClient(base_url=api_url) as client:
        similar = await _similar(client, token_for(uuid.uuid4(), admin=True), user_id=subject.id)
    ids = {s["user_id"] for s in similar}
    assert {f.id for f in world.rock if f is not subject} <= ids
    assert subject.id not in ids


# --- the public setlist leaderboard ---------------------------------------------------------


async def _scored_fans(runtime: Runtime, tag: str) -> tuple[Fan, Fan]:
    """An artist with three played shows and two fans who picked songs for each (one
    discoverable, one not), scored by the warehouse's own statements."""
    async with runtime.db.transaction() as conn:
        artist = await fetch_one_in(
            conn, "INSERT INTO app.artists (name) VALUES (%s) RETURNING id", (f"Board {tag}",)
        )
        venue = await fetch_one_in(
            conn,
            "INSERT INTO app.venues (name, city, country) VALUES ('Hall', 'Oslo', 'NO')"
            " RETURNING id",
        )
        assert artist is not None
        assert venue is not None
        song = await fetch_one_in(
            conn,
            "INSERT INTO app.songs (artist_id, title) VALUES (%s, 'Opener') RETURNING id",
            (artist["id"],),
        )
        assert song is not None
        fans = []
        for shown in (True, False):
            name = f"{'Shown' if shown else 'Hidden'} oracle {tag}"
            uid = await platform.create_user(conn, runtime.cipher, display_name=name)
            await conn.execute("UPDATE app.users SET discoverable = %s WHERE id = %s", (shown, uid))
            fans.append(Fan(uid, name, shown, set()))
        for k in range(3):
            show = await fetch_one_in(
                conn,
                "INSERT INTO app.shows (artist_id, venue_id, starts_at, status)"
                " VALUES (%s, %s, %s, 'completed') RETURNING id",
                (artist["id"], venue["id"], datetime.now(UTC) - timedelta(days=3 * (k + 1))),
            )
            assert show is not None
            await conn.execute(
                "INSERT INTO app.setlist_songs (show_id, position, song_id) VALUES (%s, 1, %s)",
                (show["id"], song["id"]),
            )
            for fan in fans:
                await conn.execute(
                    "INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)"
                    " VALUES (%s, %s, %s, now() - interval '30 days')",
                    (fan.id, show["id"], song["id"]),
                )
        for statement in statements("setlist_prediction_scores"):
            await conn.execute(statement)
    return fans[0], fans[1]


async def test_a_fan_who_did_not_opt_in_is_not_on_the_public_leaderboard(
    api_url: str, runtime: Runtime, token_for: Any
) -> None:
    shown, hidden = await _scored_fans(runtime, uuid.uuid4().hex[:6])
    async with httpx.AsyncClient(base_url=api_url) as client:
        anonymous = await client.get(LEADERBOARD, params={"limit": 500})
        stranger = await client.get(
            LEADERBOARD, params={"limit": 500}, headers=_auth(token_for(uuid.uuid4()))
        )
        own = await client.get(
            LEADERBOARD, params={"limit": 500}, headers=_auth(token_for(hidden.id))
        )
    for r in (anonymous, stranger, own):
        assert r.status_code == 200, r.text
        assert all("user_id" not in row for row in r.json()["leaders"])
        assert shown.id not in r.text
        assert hidden.id not in r.text
    for r in (anonymous, stranger):
        names = {row["display_name"] for row in r.json()["leaders"]}
        assert shown.name in names
        assert hidden.name not in names
    # The fan who did not opt in still sees their own row, marked as theirs.
    mine = [row for row in own.json()["leaders"] if row["display_name"] == hidden.name]
    assert len(mine) == 1
    assert mine[0]["is_you"] is True
    # In the database, whatever a route asks of the view.
    async with runtime.db.as_role("anon", {"role": "anon"}) as conn:
        rows = await fetch_all_in(
            conn, "SELECT display_name FROM analytics.setlist_leaderboard WHERE display_name = %s",
            (hidden.name,),
        )  # fmt: skip
    assert rows == []
