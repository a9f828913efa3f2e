"""Write keys for Segment/PostHog sources: `MYSETLIST_WRITE_KEYS` plus keys created with
`mysetlist keys create`, stored only as SHA-256 digests. Lookups are cached per process for
`MYSETLIST_WRITE_KEY_CACHE_SECONDS` (a revoked key stops working within that time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import psycopg

from mysetlist.core.db import Database

KEY_PREFIX = "msk_"


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


class WriteKeys:
    def __init__(self, db: Database, static_keys: list[str], *, cache_seconds: float) -> None:
        self.db = db
        self._static = [digest(k) for k in static_keys]
        self._cache: dict[bytes, tuple[bool, float]] = {}
        self.cache_seconds = cache_seconds

    async def is_valid(self, key: str | None) -> bool:
        if not key:
            return False
        d = digest(key)
        if any(hmac.compare_digest(d, s) for s in self._static):
            return True
        now = time.monotonic()
        cached = self._cache.get(d)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await self.db.fetch_one(
            "SELECT 1 AS ok FROM analytics.write_keys WHERE key_sha256 = %s AND revoked_at IS NULL",
            (d,),
        )
        valid = row is not None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[d] = (valid, now + self.cache_seconds)
        return valid


# -- administration (the CLI), synchronous ----------------------------------------------------


def create_key(conn: psycopg.Connection[Any], name: str) -> tuple[int, str]:
    key = new_key()
    row = conn.execute(
        """INSERT INTO analytics.write_keys (name, key_prefix, key_sha256)
           VALUES (%s, %s, %s) RETURNING id""",
        (name, key[:12], digest(key)),
    ).fetchone()
    assert row is not None
    return int(row[0]), key


def list_keys(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT id, name, key_prefix, created_at, revoked_at
           FROM analytics.write_keys ORDER BY id"""
    ).fetchall()


def revoke_key(conn: psycopg.Connection[Any], ident: str) -> int:
    """Revoke by id or by the key's printed prefix; return how many keys were revoked."""
    if ident.isdigit():
        cur = conn.execute(
            """UPDATE analytics.write_keys SET revoked_at = now()
               WHERE id = %s AND revoked_at IS NULL""",
            (int(ident),),
        )
    else:
        cur = conn.execute(
            """UPDATE analytics.write_keys SET revoked_at = now()
               WHERE (key_prefix = %s OR key_sha256 = %s) AND revoked_at IS NULL""",
            (ident[:12], digest(ident)),
        )
    return cur.rowcount
