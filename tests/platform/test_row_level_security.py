"""Row-level security holds in the database itself, with no WHERE clause in the query."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from mysetlist.core.runtime import Runtime
from mysetlist.platform import service

pytestmark = pytest.mark.db


async def _world(runtime: Runtime) -> tuple[str, str, list[int]]:
    async with runtime.db.transaction() as conn:
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
    return a, b, artists


async def test_select_without_where_returns_only_own_rows(runtime: Runtime) -> None:
    a, b, _ = await _world(runtime)
    async with runtime.db.as_user(a) as conn:
        rows = await (await conn.execute("SELECT user_id FROM app.follows")).fetchall()
        users = await (await conn.execute("SELECT id FROM app.users")).fetchall()
    assert {str(r[0]) for r in rows} == {a}
    assert len(rows) == 1
    assert [str(r[0]) for r in users] == [a]
    async with runtime.db.as_user(b) as conn:
        rows = await (await conn.execute("SELECT user_id FROM app.follows")).fetchall()
    assert {str(r[0]) for r in rows} == {b}
    assert len(rows) == 3


async def test_cannot_write_rows_for_another_user(runtime: Runtime) -> None:
    a, b, artists = await _world(runtime)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with runtime.db.as_user(a) as conn:
            await conn.execute(
                "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)", (b, artists[2])
            )
    async with runtime.db.as_user(a) as conn:
        cur = await conn.execute("DELETE FROM app.follows WHERE user_id = %s", (b,))
        assert cur.rowcount == 0  # invisible rows cannot be deleted
    async with runtime.db.transaction() as conn:
        cur = await conn.execute("SELECT count(*) FROM app.follows WHERE user_id = %s", (b,))
        assert (await cur.fetchone()) == (3,)


async def test_role_is_not_the_owner_and_claims_are_transaction_local(runtime: Runtime) -> None:
    a, _, _ = await _world(runtime)
    async with runtime.db.as_user(a) as conn:
        cur = await conn.execute("SELECT current_user, auth.uid(), auth.role()")
        role, uid, claim_role = await cur.fetchone()  # type: ignore[misc]
    assert role == "authenticated"
    assert str(uid) == a
    assert claim_role == "authenticated"
    async with runtime.db.transaction() as conn:
        cur = await conn.execute("SELECT auth.uid(), current_user <> 'authenticated'")
        assert await cur.fetchone() == (None, True)


async def test_anonymous_claims_see_nothing(runtime: Runtime) -> None:
    await _world(runtime)
    async with runtime.db.as_role("authenticated", {"role": "authenticated"}) as conn:
        cur = await conn.execute("SELECT count(*) FROM app.follows")
        assert await cur.fetchone() == (0,)


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
