"""Revoked signed ids, as ingest sees them: the digests in `analytics.revoked_signed_ids`
(erasure writes them), held in memory per API process and reloaded in the background every
`MYSETLIST_SIGNED_ID_REVOCATION_REFRESH_SECONDS`. Ingest only reads the in-memory set: no
database round trip per event, and a reload never holds a request up. The table is small:
a revocation is purged one signed-id lifetime after it was made."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from mysetlist.core.db import Database, read_sql, unmark_caller_request

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.tracking"


class RevokedSignedIds:
    def __init__(self, db: Database, *, refresh_seconds: float) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.digests: frozenset[bytes] = frozenset()
        self._loaded_at = float("-inf")
        self._reload: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._load()  # the first request already sees the revocations

    async def stop(self) -> None:
        if self._reload is not None:
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload

    def current(self) -> frozenset[bytes]:
        """The digests known now; starts a background reload when they are stale."""
        stale = time.monotonic() - self._loaded_at >= self.refresh_seconds
        if stale and (self._reload is None or self._reload.done()):
            self._reload = asyncio.get_running_loop().create_task(self._load())
        return self.digests

    async def _load(self) -> None:
        unmark_caller_request()  # a background reload, not the request that found it stale
        try:
            rows = await self.db.fetch_all(read_sql(_PACKAGE, "all_revoked_signed_ids.sql"))
        except Exception as exc:  # keep the last set; try again after the interval
            log.warning("revoked signed ids not reloaded: %s", exc)
        else:
            self.digests = frozenset(bytes(r["id_sha256"]) for r in rows)
        self._loaded_at = time.monotonic()
