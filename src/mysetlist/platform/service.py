"""The platform's own writes and reads that other code and tests need: users, follows, votes.

Emails are stored encrypted with a keyed lookup hash (core.field_encryption).
"""

from __future__ import annotations

from typing import Any

import psycopg

from mysetlist.core.db import Row, fetch_all_in, read_sql
from mysetlist.core.field_encryption import FieldCipher


async def create_user(
    conn: psycopg.AsyncConnection[Any],
    cipher: FieldCipher,
    *,
    display_name: str,
    email: str | None = None,
    timezone: str = "UTC",
    locale: str = "en",
    user_id: str | None = None,
) -> str:
    enc = cipher.encrypt(email, context=b"users.email") if email else None
    digest = cipher.lookup_hash(email) if email else None
    cur = await conn.execute(
        """INSERT INTO app.users (id, display_name, email_encrypted, email_hash, timezone, locale)
           VALUES (coalesce(%s::uuid, gen_random_uuid()), %s, %s, %s, %s, %s) RETURNING id""",
        (user_id, display_name, enc, digest, timezone, locale),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def find_user_by_email(
    conn: psycopg.AsyncConnection[Any], cipher: FieldCipher, email: str
) -> str | None:
    cur = await conn.execute(
        "SELECT id FROM app.users WHERE email_hash = %s", (cipher.lookup_hash(email),)
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def user_email(
    conn: psycopg.AsyncConnection[Any], cipher: FieldCipher, user_id: str
) -> str | None:
    cur = await conn.execute("SELECT email_encrypted FROM app.users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return cipher.decrypt(bytes(row[0]), context=b"users.email")


async def follow(conn: psycopg.AsyncConnection[Any], user_id: str, artist_id: int) -> None:
    await conn.execute(
        "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (user_id, artist_id),
    )


async def my_profile(conn: psycopg.AsyncConnection[Any]) -> Row | None:
    """The caller's own row; `conn` must be an `as_user` transaction (RLS does the filtering)."""
    rows = await fetch_all_in(conn, read_sql(__package__, "my_profile.sql"))
    return rows[0] if rows else None


async def set_discoverable(conn: psycopg.AsyncConnection[Any], discoverable: bool) -> bool:
    """Set the caller's consent to be found by other fans (similar fans, the leaderboard);
    `conn` must be the caller's own transaction. False when the caller has no profile."""
    rows = await fetch_all_in(
        conn, read_sql(__package__, "set_discoverable.sql"), {"discoverable": discoverable}
    )
    return bool(rows)


async def my_follows(conn: psycopg.AsyncConnection[Any]) -> list[Row]:
    return await fetch_all_in(conn, read_sql(__package__, "my_follows.sql"))
