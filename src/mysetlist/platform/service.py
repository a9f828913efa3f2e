"""The platform's own writes and reads that other code and tests need: users, follows, votes.

Emails are stored encrypted with a keyed lookup hash (core.field_encryption).
"""

from __future__ import annotations

from typing import Any

import psycopg

from mysetlist.core.db import Row, fetch_all_in, fetch_one_in, read_sql
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
    row = await fetch_one_in(
        conn,
        read_sql(__package__, "user_create.sql"),
        {
            "id": user_id,
            "display_name": display_name,
            "email_encrypted": enc,
            "email_hash": digest,
            "timezone": timezone,
            "locale": locale,
        },
    )
    assert row is not None  # RETURNING gives the one row inserted
    return str(row["id"])


async def find_user_by_email(
    conn: psycopg.AsyncConnection[Any], cipher: FieldCipher, email: str
) -> str | None:
    row = await fetch_one_in(
        conn, read_sql(__package__, "user_by_email.sql"), (cipher.lookup_hash(email),)
    )
    return str(row["id"]) if row else None


async def user_email(
    conn: psycopg.AsyncConnection[Any], cipher: FieldCipher, user_id: str
) -> str | None:
    row = await fetch_one_in(conn, read_sql(__package__, "user_email.sql"), (user_id,))
    if row is None or row["email_encrypted"] is None:
        return None
    return cipher.decrypt(bytes(row["email_encrypted"]), context=b"users.email")


async def follow(conn: psycopg.AsyncConnection[Any], user_id: str, artist_id: int) -> None:
    await conn.execute(read_sql(__package__, "follow.sql"), (user_id, artist_id))


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
