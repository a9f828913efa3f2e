"""Row-level security on the platform's tables holds in the database itself, with no WHERE
clause in the query, as `authenticated` with a real token's claims, whether a superuser or a
plain role (managed PostgreSQL) owns the tables (`owner_db` runs each test under both)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from mysetlist.core.db import Database
from mysetlist.core.runtime import Runtime
from mysetlist.platform import service

pytestmark = pytest.mark.db


@dataclass
class World:
    a: str
    b: str
    artists: list[int]
    show: int
    songs: list[int]
    vote_b: int
    push_b: int


async def _world(db: Database, runtime: Runtime) -> World:
    """Two fans, Ana and Ben: Ben follows three artists, votes and has a push subscription."""
    async with db.transaction() as conn:
        a = await service.create_user(conn, runtime.cipher, display_name="Ana")
        b = await service.create_user(conn, runtime.cipher, display_name="Ben")
        cur = await conn.execute(
            "INSERT INTO app.artists (name, genres) VALUES ('RLS A', '{rock}'), ('RLS B', '{pop}'),"
            " ('RLS C', '{jazz}') RETURNING id"
        )
        artists = [r[0] for r in await cur.fetchall()]
        for artist in artists:
            await service.follow(conn, b, artist)
        await service.follow(conn, a, artists[0])
        cur = await conn.execute(
            "WITH v AS (INSERT INTO app.venues (name, city, country) VALUES ('Hall', 'Oslo', 'NO')"
            " RETURNING id)"
            " INSERT INTO app.shows (artist_id, venue_id, starts_at) SELECT %s, id, now() FROM v"
            " RETURNING id",
            (artists[0],),
        )
        show = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "INSERT INTO app.songs (artist_id, title) VALUES (%s, 'One'), (%s, 'Two') RETURNING id",
            (artists[0], artists[0]),
        )
        songs = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute(
            "INSERT INTO app.setlist_votes (user_id, show_id, song_id) VALUES (%s, %s, %s)"
            " RETURNING id",
            (b, show, songs[0]),
        )
        vote_b = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "INSERT INTO app.push_subscriptions (user_id, endpoint_hash, subscription_encrypted)"
            " VALUES (%s, %s, 'x') RETURNING id",
            (b, uuid.uuid4().bytes),
        )
        push_b = (await cur.fetchone())[0]  # type: ignore[index]
    return World(a, b, artists, show, songs, vote_b, push_b)


async def _scalar(conn: psycopg.AsyncConnection[Any], query: str, params: Any = None) -> Any:
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return row[0]


async def test_the_owner_under_test_is_what_it_claims(owner_db: Database, request: Any) -> None:
    # The managed case only proves something if its owner really cannot bypass RLS.
    async with owner_db.transaction() as conn:
        cur = await conn.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        bypasses = (await cur.fetchone())[0]  # type: ignore[index]
    assert bypasses is ("non-superuser" not in request.node.callspec.id)


async def test_select_without_where_returns_only_own_rows(
    owner_db: Database, runtime: Runtime, claims_for: Any
) -> None:
    w = await _world(owner_db, runtime)
    async with owner_db.as_caller(claims_for(w.a)) as conn:
        follows = await (await conn.execute("SELECT user_id FROM app.follows")).fetchall()
        users = await (await conn.execute("SELECT id FROM app.users")).fetchall()
        votes = await _scalar(conn, "SELECT count(*) FROM app.setlist_votes")
        pushes = await _scalar(conn, "SELECT count(*) FROM app.push_subscriptions")
    assert [str(r[0]) for r in follows] == [w.a]
    assert [str(r[0]) for r in users] == [w.a]
    assert (votes, pushes) == (0, 0)
    async with owner_db.as_caller(claims_for(w.b)) as conn:
        follows = await (await conn.execute("SELECT user_id FROM app.follows")).fetchall()
        votes = await _scalar(conn, "SELECT array_agg(id) FROM app.setlist_votes")
        pushes = await _scalar(conn, "SELECT array_agg(id) FROM app.push_subscriptions")
    assert [str(r[0]) for r in follows] == [w.b] * 3
    assert (votes, pushes) == ([w.vote_b], [w.push_b])


@pytest.mark.parametrize(
    ("table", "insert"),
    [
        ("follows", "INSERT INTO app.follows (user_id, artist_id) VALUES (%(user)s, %(artist)s)"),
        (
            "setlist_votes",
            "INSERT INTO app.setlist_votes (user_id, show_id, song_id)"
            " VALUES (%(user)s, %(show)s, %(song)s)",
        ),
        (
            "push_subscriptions",
            "INSERT INTO app.push_subscriptions (user_id, endpoint_hash, subscription_encrypted)"
            " VALUES (%(user)s, %(hash)s, 'x')",
        ),
    ],
)
async def test_writes_only_for_oneself(
    owner_db: Database, runtime: Runtime, claims_for: Any, table: str, insert: str
) -> None:
    w = await _world(owner_db, runtime)
    values = {"artist": w.artists[2], "show": w.show, "song": w.songs[1]}
    caller = claims_for(w.a)

    # Inserting a row for another user violates the policy's WITH CHECK.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        async with owner_db.as_caller(caller) as conn:
            await conn.execute(insert, {**values, "user": w.b, "hash": uuid.uuid4().bytes})
    async with owner_db.as_caller(caller) as conn:
        # Another user's rows are invisible, so neither updated nor deleted.
        cur = await conn.execute(
            f"UPDATE app.{table} SET created_at = now() WHERE user_id = %s", (w.b,)
        )
        assert cur.rowcount == 0
        cur = await conn.execute(f"DELETE FROM app.{table} WHERE user_id = %s", (w.b,))
        assert cur.rowcount == 0
        # One's own rows can be written ...
        await conn.execute(insert, {**values, "user": w.a, "hash": uuid.uuid4().bytes})
    # ... but not handed over to another user.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        async with owner_db.as_caller(caller) as conn:
            await conn.execute(
                f"UPDATE app.{table} SET user_id = %s WHERE user_id = %s", (w.b, w.a)
            )
    async with owner_db.as_caller(caller) as conn:
        cur = await conn.execute(f"DELETE FROM app.{table} WHERE user_id = %s", (w.a,))
        assert cur.rowcount >= 1
    bens_rows = 3 if table == "follows" else 1  # as _world made them: all still there
    async with owner_db.transaction() as conn:
        query = f"SELECT count(*) FROM app.{table} WHERE user_id = %s"
        assert await _scalar(conn, query, (w.b,)) == bens_rows


async def test_users_update_only_their_own_profile_fields(
    owner_db: Database, runtime: Runtime, claims_for: Any
) -> None:
    w = await _world(owner_db, runtime)
    caller = claims_for(w.a)
    async with owner_db.as_caller(caller) as conn:
        cur = await conn.execute(
            "UPDATE app.users SET display_name = 'Ana B', timezone = 'Europe/Oslo', locale = 'nb'"
        )
        assert cur.rowcount == 1  # only the caller's own row is visible
        cur = await conn.execute(
            "UPDATE app.users SET display_name = 'hacked' WHERE id = %s", (w.b,)
        )
        assert cur.rowcount == 0
    # Identity, the verified email, erasure and activity bookkeeping are the service's.
    for column, value in [
        ("id", str(uuid.uuid4())),
        ("email_hash", b"someone else's address"),
        ("email_encrypted", b"x"),
        ("created_at", "2000-01-01T00:00:00Z"),
        ("deleted_at", None),
        ("last_active_at", "2000-01-01T00:00:00Z"),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with owner_db.as_caller(caller) as conn:
                await conn.execute(f"UPDATE app.users SET {column} = %s", (value,))
    for statement in (
        "INSERT INTO app.users (display_name) VALUES ('new')",
        "DELETE FROM app.users",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with owner_db.as_caller(caller) as conn:
                await conn.execute(statement)
    async with owner_db.transaction() as conn:
        cur = await conn.execute(
            "SELECT id::text, display_name, timezone, locale FROM app.users WHERE id IN (%s, %s)"
            " ORDER BY display_name",
            (w.a, w.b),
        )
        assert await cur.fetchall() == [
            (w.a, "Ana B", "Europe/Oslo", "nb"),
            (w.b, "Ben", "UTC", "en"),
        ]


async def test_operators_view_every_user_but_change_none(
    owner_db: Database, runtime: Runtime, claims_for: Any
) -> None:
    w = await _world(owner_db, runtime)
    operator = claims_for(uuid.uuid4(), admin=True)
    async with owner_db.as_caller(operator) as conn:
        seen = await _scalar(
            conn, "SELECT count(*) FROM app.users WHERE id IN (%s, %s)", (w.a, w.b)
        )
        cur = await conn.execute("UPDATE app.users SET display_name = 'x' WHERE id = %s", (w.b,))
        assert cur.rowcount == 0
    assert seen == 2


async def test_role_is_not_the_owner_and_claims_are_transaction_local(
    owner_db: Database, runtime: Runtime, claims_for: Any
) -> None:
    w = await _world(owner_db, runtime)
    async with owner_db.as_caller(claims_for(w.a)) as conn:
        cur = await conn.execute("SELECT current_user, auth.uid(), auth.role()")
        role, uid, claim_role = await cur.fetchone()  # type: ignore[misc]
    assert role == "authenticated"
    assert str(uid) == w.a
    assert claim_role == "authenticated"
    async with owner_db.transaction() as conn:
        cur = await conn.execute("SELECT auth.uid(), current_user <> 'authenticated'")
        assert await cur.fetchone() == (None, True)


async def test_claims_without_a_user_see_nothing(owner_db: Database, runtime: Runtime) -> None:
    await _world(owner_db, runtime)
    async with owner_db.as_role("authenticated", {"role": "authenticated"}) as conn:
        for table in ("users", "follows", "setlist_votes", "push_subscriptions"):
            assert await _scalar(conn, f"SELECT count(*) FROM app.{table}") == 0, table


@pytest.mark.parametrize("table", ["users", "follows", "setlist_votes", "push_subscriptions"])
async def test_anon_role_is_refused_per_user_tables(
    owner_db: Database, runtime: Runtime, table: str
) -> None:
    await _world(owner_db, runtime)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with owner_db.as_role("anon", {"role": "anon"}) as conn:
            await conn.execute(f"SELECT 1 FROM app.{table} LIMIT 1")
    async with owner_db.as_role("anon", {"role": "anon"}) as conn:
        assert await _scalar(conn, "SELECT count(*) FROM app.artists") >= 3  # reference data


async def test_email_is_encrypted_at_rest_and_found_by_keyed_hash(runtime: Runtime) -> None:
    email = f"fan-{uuid.uuid4().hex[:8]}@example.org"
    async with runtime.db.transaction() as conn:
        uid = await service.create_user(conn, runtime.cipher, display_name="Cy", email=email)
        cur = await conn.execute(
            "SELECT position(%s::bytea in email_encrypted) FROM app.users WHERE id = %s",
            (email.encode(), uid),
        )
        assert await cur.fetchone() == (0,)
        assert await service.find_user_by_email(conn, runtime.cipher, email.upper()) == uid
        assert await service.user_email(conn, runtime.cipher, uid) == email
