"""Revoking a user's tokens: every token (and dashboard session) of the user issued before
a moment is refused from then on. Erasure revokes (privacy/erasure.py), and so do operators
(`mysetlist auth revoke USER_ID`, `POST /api/auth/users/{user_id}/revoke-tokens`).

A revocation is one row in `analytics.token_revocations`: a keyed hash of the user id and
`valid_after`; a token whose `iat` is earlier is refused with 401. The check runs on every
authenticated request, the ingest path included, so it reads no database and no Redis:
each API process holds every revocation in a dict (empty on most installs, so the check is
one truthiness test) and reads the recent rows in the background every
`MYSETLIST_TOKEN_REVOCATION_REFRESH_SECONDS` (default 1 s). The process that revokes applies
the revocation at once; every other process within one refresh. Whoever holds something
open for a user (an inbox stream) hears of it through `on_revoked`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.core"
_MAX_CACHED_KEYS = 50_000


class TokenRevocations:
    """The revocations this process knows, keyed by the hash of the user id."""

    def __init__(self, lookup_hash: Callable[[str], bytes]) -> None:
        self._lookup_hash = lookup_hash
        self._keys: dict[str, bytes] = {}  # user id -> its hash (an HMAC costs ~3 us)
        self._valid_after: dict[bytes, float] = {}
        self._since: datetime | None = None
        self._on_revoked: list[Callable[[bytes], None]] = []

    def on_revoked(self, callback: Callable[[bytes], None]) -> None:
        """Call `callback(user_key)` whenever a user's cutoff moves forward (open streams
        end with it); must be cheap and must not raise."""
        self._on_revoked.append(callback)

    def user_key(self, user_id: str) -> bytes:
        key = self._keys.get(user_id)
        if key is None:
            # Domain-separated from the other lookup hashes made with the same key (emails).
            key = self._lookup_hash(f"token-revocation:{user_id}")
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[user_id] = key
        return key

    def is_revoked(self, user_id: str, issued_at: float | None) -> bool:
        """Whether a credential of `user_id` issued at `issued_at` (epoch seconds; None:
        unknown, which a revoked user's credential cannot prove to be recent) is revoked."""
        if not self._valid_after:
            return False
        cutoff = self._valid_after.get(self.user_key(user_id))
        if cutoff is None:
            return False
        return issued_at is None or issued_at < cutoff

    def apply(self, user_key: bytes, valid_after: float) -> None:
        known = self._valid_after.get(user_key, 0.0)
        if valid_after <= known:
            return
        self._valid_after[user_key] = valid_after
        for callback in self._on_revoked:
            callback(user_key)

    async def refresh(self, db: Database) -> int:
        """Read the revocations made since the last read (all of them the first time)."""
        async with db.transaction() as conn:
            rows = await fetch_all_in(
                conn, read_sql(_PACKAGE, "token_revocations_since.sql"), {"since": self._since}
            )
        for row in rows:
            self.apply(bytes(row["user_key"]), float(row["valid_after"]))
            if self._since is None or row["revoked_at"] > self._since:
                self._since = row["revoked_at"]
        return len(rows)

    async def run(self, db: Database, interval_seconds: float) -> None:
        """Refresh every `interval_seconds` until cancelled (the API's lifespan)."""
        while True:
            try:
                await self.refresh(db)
            except Exception:  # the database is away: keep what we know, try again
                log.warning("could not read token revocations", exc_info=True)
            await asyncio.sleep(interval_seconds)


async def revoke_user_tokens(
    conn: AsyncConnection[Any], user_id: str, revocations: TokenRevocations
) -> float:
    """Revoke every token and dashboard session of `user_id` issued until now, inside the
    caller's transaction; returns the new `valid_after` (epoch seconds). Applied to this
    process's `revocations` (the runtime's) at once."""
    key = revocations.user_key(user_id)
    row = await fetch_one_in(conn, read_sql(_PACKAGE, "token_revocation_upsert.sql"),
                             {"user_key": key})  # fmt: skip
    assert row is not None
    valid_after = float(row["valid_after"])
    revocations.apply(key, valid_after)
    return valid_after
