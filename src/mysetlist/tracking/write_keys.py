"""Write keys for Segment/PostHog sources: `MYSETLIST_WRITE_KEYS` plus keys created with
`mysetlist keys create`, stored only as SHA-256 digests. Lookups are cached per process for
`MYSETLIST_WRITE_KEY_CACHE_SECONDS` (a revoked key stops working within that time).

Each key has a trust level (see identity_rule.py): `browser` (the default, public by nature) or
`server` (may name users and merge identities). In `MYSETLIST_WRITE_KEYS` a key is
`browser` unless written `server:KEY`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, get_args

import psycopg
from psycopg.rows import dict_row

from mysetlist.core.audit import record_audit_sync
from mysetlist.core.db import Database, read_sql
from mysetlist.tracking.identity_rule import KeyTrust

_PACKAGE = "mysetlist.tracking"
KEY_PREFIX = "msk_"
TRUST_LEVELS: tuple[KeyTrust, ...] = get_args(KeyTrust)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def parse_static_key(entry: str) -> tuple[KeyTrust, str]:
    """`server:KEY` or `browser:KEY` from `MYSETLIST_WRITE_KEYS`; a bare key is `browser`."""
    trust, sep, key = entry.partition(":")
    if sep and trust in TRUST_LEVELS and key:
        return trust, key  # type: ignore[return-value]  # checked against TRUST_LEVELS
    return "browser", entry


class WriteKeys:
    def __init__(self, db: Database, static_keys: list[str], *, cache_seconds: float) -> None:
        self.db = db
        self._static = [(digest(k), t) for t, k in map(parse_static_key, static_keys)]
        self._cache: dict[bytes, tuple[KeyTrust | None, float]] = {}
        self.cache_seconds = cache_seconds

    async def trust(self, key: str | None) -> KeyTrust | None:
        """The key's trust level, or None when it is not a valid (unrevoked) key."""
        if not key:
            return None
        d = digest(key)
        for static, trust in self._static:
            if hmac.compare_digest(d, static):
                return trust
        now = time.monotonic()
        cached = self._cache.get(d)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await self.db.fetch_one(read_sql(_PACKAGE, "write_key_trust.sql"), {"digest": d})
        found: KeyTrust | None = row["trust"] if row is not None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[d] = (found, now + self.cache_seconds)
        return found


# -- administration (the CLI), synchronous ----------------------------------------------------
# Rows are read as dicts whatever the connection's own row factory.


def create_key(
    conn: psycopg.Connection[Any], name: str, trust: KeyTrust = "browser"
) -> tuple[int, str]:
    key = new_key()
    params = {"name": name, "prefix": key[:12], "digest": digest(key), "trust": trust}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(read_sql(_PACKAGE, "create_write_key.sql"), params).fetchone()
    assert row is not None
    record_audit_sync(
        conn, "tracking.write_key_create", actor_role="cli", target=("write_key", row["id"]),
        details={"name": name, "trust": trust, "prefix": key[:12]},
    )  # fmt: skip
    return int(row["id"]), key


def list_keys(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every key: id, name, key_prefix, trust, created_at, revoked_at."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(read_sql(_PACKAGE, "list_write_keys.sql")).fetchall()


def _match_params(ident: str) -> dict[str, Any]:
    return {
        "id": int(ident) if ident.isdigit() else None,
        "prefix": ident[:12],
        "digest": digest(ident),
    }


def set_trust(conn: psycopg.Connection[Any], ident: str, trust: KeyTrust) -> int:
    """Set the trust level of active keys matching `ident`; return how many changed."""
    cur = conn.execute(
        read_sql(_PACKAGE, "set_write_key_trust.sql"), {**_match_params(ident), "trust": trust}
    )
    return cur.rowcount


def revoke_key(conn: psycopg.Connection[Any], ident: str) -> int:
    """Revoke by id or by the key's printed prefix; return how many keys were revoked."""
    cur = conn.execute(read_sql(_PACKAGE, "revoke_write_key.sql"), _match_params(ident))
    return cur.rowcount
