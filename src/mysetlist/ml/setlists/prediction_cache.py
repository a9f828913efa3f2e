"""The predicted setlist answer, shared by every caller for a short while (Redis).

The answer of `GET /api/shows/{id}/predicted-setlist` is the same for everyone who may see
it: the show, the stored prediction made from the current inputs, the public scores. Only
*whether* a caller may see it differs (row-level security: anonymous visitors see
predictions of upcoming shows only). So the answer is cached once per (show, kind) with the
id of the stored prediction it shows, and every read from the cache first asks the database,
under the caller's own role, whether that prediction row is visible to them and whether the
show still starts when and has the status the cached answer says (`prediction_current.sql`,
one indexed lookup). A show that started, was moved or cancelled, and a caller RLS hides the
prediction from, therefore never get the cached answer.

What the cache does not see, for at most `ML_PREDICTED_SETLIST_CACHE_SECONDS` (and never
past the show's start): a changed model input (a newly played setlist of the artist, a
promoted ranker), new fans' votes for a blend, new scores. The hourly prediction job drops
the cached answers of the shows it stored a new prediction for (`forget`).

Keys: `<prefix>:predicted-setlist:{<show id>}:<kind>`; the show id is the hash tag, so on a
Redis Cluster one show's keys share a slot and `forget` deletes them in one command. Best
effort: a Redis error means "no cache", never a failed read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from mysetlist.core.redis_client import RedisClient
from mysetlist.core.runtime import Runtime
from mysetlist.ml.config import load_ml_settings

log = logging.getLogger(__name__)
KINDS = ("model", "blend")


class PredictionCache:
    def __init__(self, redis_client: RedisClient | None, prefix: str, seconds: float) -> None:
        self.redis = redis_client if seconds > 0 else None
        self.prefix = prefix
        self.seconds = seconds

    def key(self, show_id: int, kind: str) -> str:
        return f"{self.prefix}:predicted-setlist:{{{show_id}}}:{kind}"

    async def get(self, show_id: int, kind: str) -> dict[str, Any] | None:
        """The cached entry: {"prediction_id", "answer"} (the answer as JSON values)."""
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(self.key(show_id, kind))
        except redis.RedisError:
            log.info("predicted setlist cache unavailable; reading the database")
            return None
        return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]

    async def put(
        self, show_id: int, kind: str, prediction_id: int, answer: dict[str, Any]
    ) -> None:
        """Keep `answer` for `seconds`, and for an upcoming show never past its start (so
        the cached `upcoming` is never wrong)."""
        if self.redis is None:
            return
        ttl_ms = int(self.seconds * 1000)
        if answer["upcoming"]:
            starts_at = datetime.fromisoformat(answer["starts_at"])
            ttl_ms = min(ttl_ms, int((starts_at - datetime.now(UTC)).total_seconds() * 1000))
        if ttl_ms <= 0:
            return
        entry = orjson.dumps({"prediction_id": prediction_id, "answer": answer})
        try:
            await self.redis.set(self.key(show_id, kind), entry, px=ttl_ms)
        except redis.RedisError:
            log.info("predicted setlist cache unavailable; answer not cached")

    async def forget(self, show_ids: Iterable[int]) -> None:
        """Drop the cached answers of these shows (a new prediction was stored for them)."""
        if self.redis is None:
            return
        try:
            for show_id in sorted(set(show_ids)):
                await self.redis.delete(*(self.key(show_id, kind) for kind in KINDS))
        except redis.RedisError:
            log.info("predicted setlist cache unavailable; cached answers expire on their own")


def prediction_cache(runtime: Runtime) -> PredictionCache:
    """The cache as the API and the prediction job share it (same keys, same Redis)."""
    seconds = load_ml_settings().predicted_setlist_cache_seconds
    return PredictionCache(runtime.redis, runtime.settings.redis_key_prefix, seconds)
