"""Tracking services: ingest (ours, Segment, PostHog), reading a user's events, live metrics.

Routes only translate HTTP to these calls. `IngestService` is per API process: it owns the
group-commit writer, the live-metrics recorder, the rate limiter and the write-key cache.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_all_in, read_sql
from mysetlist.core.rate_limit import RateLimiter
from mysetlist.core.runtime import Runtime
from mysetlist.core.user_cache import INVALIDATING_EVENTS, bump_cache_generations
from mysetlist.tracking.config import TrackingSettings
from mysetlist.tracking.errors import (
    BodyTooLarge,
    IngestUnavailable,
    MalformedBody,
    MalformedQuery,
    OtherUsersEvents,
    RejectedEvents,
    UnknownWriteKey,
    UnsupportedEncoding,
)
from mysetlist.tracking.events import Ingest
from mysetlist.tracking.group_commit import (
    FlushResult,
    GroupCommitWriter,
    Overloaded,
    Rejected,
    Unavailable,
)
from mysetlist.tracking.identity_rule import KeyTrust
from mysetlist.tracking.live_metrics import LiveMetricsRecorder, read_live_metrics
from mysetlist.tracking.revocations import RevokedSignedIds
from mysetlist.tracking.signed_ids import IdKind, SignedIds, revocation_digest
from mysetlist.tracking.wire.own import own_events, own_events_fast
from mysetlist.tracking.wire.posthog import posthog_api_key, posthog_events
from mysetlist.tracking.wire.segment import segment_events, segment_write_key
from mysetlist.tracking.wire.validation import parse_json
from mysetlist.tracking.write_keys import WriteKeys
from mysetlist.tracking.write_keys import digest as write_key_digest

_PACKAGE = "mysetlist.tracking"


def _inflate(body: bytes, *, wbits: int, limit: int) -> bytes:
    """`body` decompressed (zlib.error when it is not a whole stream), 413 beyond `limit`."""
    inflater = zlib.decompressobj(wbits=wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise zlib.error("the compressed stream is truncated")
    return out


def decode_body(
    body: bytes, *, content_encoding: str | None, compression: str | None, limit: int
) -> bytes:
    """The request body after `Content-Encoding: gzip`/`deflate` or PostHog's
    `?compression=gzip-js|base64`, refusing to inflate beyond `limit` bytes."""
    encoding = (content_encoding or "").strip().lower()
    compression = (compression or "").strip().lower()
    if compression == "base64":
        try:
            body = base64.b64decode(body, validate=False)
        except binascii.Error:
            raise MalformedBody("body is not valid base64") from None
    if encoding in ("gzip", "deflate") or compression in ("gzip", "gzip-js"):
        name = "deflate" if encoding == "deflate" else "gzip"
        try:
            return _inflate(body, wbits=47, limit=limit)  # gzip or zlib header, detected
        except zlib.error as exc:
            if name != "deflate":
                raise MalformedBody(f"body is not valid gzip: {exc}") from None
        try:  # HTTP's deflate is zlib-wrapped, but some clients send it raw (no header)
            return _inflate(body, wbits=-15, limit=limit)
        except zlib.error as exc:
            raise MalformedBody(f"body is not valid deflate: {exc}") from None
    if encoding not in ("", "identity"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r}")
    return body


@dataclass
class Accepted:
    accepted: int


class IngestService:
    def __init__(self, runtime: Runtime, tracking: TrackingSettings) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.tracking = tracking
        self.live = LiveMetricsRecorder(runtime.redis, prefix=runtime.settings.redis_key_prefix)
        self.writer = GroupCommitWriter(
            runtime.database_url,
            max_events=max(tracking.group_commit_max_events, runtime.settings.analytics_batch_size),
            max_queue=tracking.group_commit_max_queue,
            connections=tracking.group_commit_connections,
            linger=tracking.group_commit_linger_ms / 1000.0,
            on_commit=self._committed,
        )
        self.limiter = RateLimiter(
            runtime.redis_url,
            anonymous=tracking.rate_limit_anonymous,
            write_key=tracking.rate_limit_write_key,
            user=tracking.rate_limit_user,
            auth_failure=runtime.settings.auth_failure_rate_limit,
            enabled=runtime.settings.rate_limit_enabled,
            key_prefix=runtime.settings.redis_key_prefix,
        )
        self.keys = WriteKeys(
            runtime.db, runtime.settings.write_keys, cache_seconds=tracking.write_key_cache_seconds
        )
        self.revocations = RevokedSignedIds(
            runtime.db, refresh_seconds=tracking.signed_id_revocation_refresh_seconds
        )
        self.signed_ids = SignedIds(
            runtime.settings.effective_encryption_key,
            ttl_seconds=tracking.signed_id_ttl_days * 86400,
            revoked=self.revocations.current,
        )

    async def start(self) -> None:
        await self.writer.start()
        await self.live.start()
        await self.revocations.start()

    async def stop(self) -> None:
        await self.writer.stop()
        await self.live.stop()
        await self.revocations.stop()

    def _committed(self, result: FlushResult) -> None:
        self.live.record(result.rows)

    @property
    def body_limit(self) -> int:
        return self.settings.max_body_bytes

    async def _store(self, ingest: Ingest) -> Accepted:
        try:
            await self.writer.submit(ingest.rows, ingest.links)
        except Overloaded as exc:
            raise IngestUnavailable(
                "ingest is saturated; retry shortly", retry_after=exc.retry_after
            ) from None
        except Unavailable as exc:
            raise IngestUnavailable(str(exc), retry_after=2) from None
        except Rejected as exc:
            raise RejectedEvents(str(exc)) from None
        users = {
            str(r.user_id) for r in ingest.rows if r.user_id and r.event_type in INVALIDATING_EVENTS
        }
        if users:  # most requests: nothing to invalidate, no coroutine
            await self._invalidate_user_caches(users)
        return Accepted(len(ingest.rows))

    async def _invalidate_user_caches(self, users: set[str]) -> None:
        """A committed follow or vote makes the user's cached answers (recommendations)
        stale; best effort, like live metrics: Redis down leaves them to expire."""
        with contextlib.suppress(redis.RedisError):
            await bump_cache_generations(
                self.runtime.redis, self.runtime.settings.redis_key_prefix, users
            )

    async def _limit(self, scope: str, identity: str) -> None:
        (await self.limiter.hit(scope, identity)).raise_if_refused(scope.replace("_", " "))

    async def _require_key(self, key: str | None) -> tuple[str, KeyTrust]:
        """The write key and its trust level, or UnknownWriteKey."""
        trust = await self.keys.trust(key)
        if trust is None:
            raise UnknownWriteKey("a valid write key is required")
        assert key is not None
        return key, trust

    async def issue_anonymous_ids(
        self, client_ip: str, current: dict[str, str | None] | None = None
    ) -> dict[str, Any]:
        """Server-signed anonymous and session ids for a visitor: carrying them on an
        authenticated event later proves they are the visitor's own. A `current` token that
        is still valid and not revoked is renewed (the same id, a new expiry); anything else
        gets a fresh id. Renewal asks the database about revocation, issuing does not."""
        await self._limit("anonymous", client_ip)
        now = datetime.now(UTC).timestamp()
        renewable: dict[IdKind, str] = {}
        fields: tuple[tuple[IdKind, str], ...] = (
            ("anonymous", "anonymous_id"), ("session", "session_id"),
        )  # fmt: skip
        for kind, field in fields:
            verified = self.signed_ids.verify(kind, (current or {}).get(field))
            if verified is not None and verified.valid(now):
                renewable[kind] = verified.id
        if renewable:
            revoked = await self.runtime.db.fetch_all(
                read_sql(_PACKAGE, "revoked_signed_ids.sql"),
                {"digests": [revocation_digest(v) for v in renewable.values()]},
            )
            gone = {bytes(r["id_sha256"]) for r in revoked}
            renewable = {k: v for k, v in renewable.items() if revocation_digest(v) not in gone}
        return {
            "anonymous_id": self.signed_ids.issue(
                "anonymous", stable_id=renewable.get("anonymous"), now=now
            ),
            "session_id": self.signed_ids.issue(
                "session", stable_id=renewable.get("session"), now=now
            ),
            "expires_at": datetime.fromtimestamp(
                int(now) + self.signed_ids.ttl_seconds, UTC
            ).isoformat(),
            "renewed": sorted(renewable),
        }

    # -- our endpoint ------------------------------------------------------------------------

    async def track(self, body: bytes, claims: Claims | None, client_ip: str) -> Accepted:
        if claims is not None:
            await self._limit("user", claims.user_id)
        else:
            await self._limit("anonymous", client_ip)
        now = datetime.now(UTC)
        user_id = claims.user_id if claims else None
        max_batch = self.settings.analytics_batch_size
        # The one-pass msgspec path for a body it accepts; otherwise the pydantic path,
        # which gives the answer (wire/own.py).
        ingest = own_events_fast(
            body, user_id=user_id, max_batch=max_batch, received_at=now, signed=self.signed_ids
        ) or own_events(
            parse_json(body), user_id=user_id, max_batch=max_batch, received_at=now,
            signed=self.signed_ids,
        )  # fmt: skip
        return await self._store(ingest)

    # -- Segment -----------------------------------------------------------------------------

    async def segment(self, body: bytes, basic_user: str | None, kind: str | None) -> Accepted:
        payload = parse_json(body)
        key, trust = await self._require_key(basic_user or segment_write_key(payload))
        await self._limit("write_key", key)
        ingest = segment_events(
            payload, kind=kind, body_size=len(body), received_at=datetime.now(UTC),
            trust=trust, signed=self.signed_ids, key_scope=write_key_digest(key),
        )  # fmt: skip
        return await self._store(ingest)

    # -- PostHog -----------------------------------------------------------------------------

    async def posthog(self, body: bytes) -> Accepted:
        payload = parse_json(body)
        key, trust = await self._require_key(posthog_api_key(payload))
        await self._limit("write_key", key)
        ingest = posthog_events(
            payload, received_at=datetime.now(UTC), trust=trust, signed=self.signed_ids,
            key_scope=write_key_digest(key),
        )  # fmt: skip
        return await self._store(ingest)

    async def live_metrics(self) -> dict[str, Any]:
        """The public live panel: event names are free text from any sender, so only the
        configured platform event types are shown by name; the rest count as `other`
        (operators see every name on the dashboard)."""
        metrics = await read_live_metrics(
            self.runtime.redis, prefix=self.runtime.settings.redis_key_prefix
        )
        return public_live_metrics(metrics, frozenset(self.tracking.live_public_event_types))


OTHER_EVENTS = "other"


def public_live_metrics(metrics: dict[str, Any], shown: frozenset[str]) -> dict[str, Any]:
    """`metrics` with every event type outside `shown` folded into `other`."""

    def fold(counts: dict[str, int]) -> dict[str, int]:
        out: Counter[str] = Counter()
        for name, n in counts.items():
            out[name if name in shown else OTHER_EVENTS] += n
        return dict(out)

    if "events_last_hour" not in metrics:
        return metrics  # degraded: no names to fold
    return {
        **metrics,
        "events_last_hour": fold(metrics["events_last_hour"]),
        "events_per_minute": [
            {**m, "events": fold(m["events"])} for m in metrics["events_per_minute"]
        ],
    }


# -- reading a user's events ------------------------------------------------------------------


def _encode_cursor(created_at: datetime, event_id: uuid.UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(event_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, eid = orjson.loads(raw)
        return datetime.fromisoformat(ts), uuid.UUID(eid)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise MalformedQuery("invalid cursor") from None


async def list_events(
    db: Database,
    viewer: Claims,
    *,
    user_id: str | None = None,
    event_types: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A user's events, newest first, keyset-paged. Runs under RLS as the viewer; operators
    may name any user (service_role tokens read as service_role, admins via the policy)."""
    target = user_id or viewer.user_id
    try:
        target = str(uuid.UUID(target))
    except ValueError:
        raise MalformedQuery("user_id must be a uuid") from None
    if target != viewer.user_id and not viewer.is_operator:
        raise OtherUsersEvents("only operators may read another user's events")
    after = _decode_cursor(cursor) if cursor else None
    params = {
        "user_id": target,
        "types": event_types or None,
        "since": since,
        "until": until,
        "cursor_ts": after[0] if after else None,
        "cursor_id": after[1] if after else None,
        "limit": limit + 1,
    }
    async with db.as_caller(viewer) as conn:
        rows = await fetch_all_in(conn, read_sql(_PACKAGE, "list_user_events.sql"), params)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(rows[-1]["created_at"], rows[-1]["event_id"]) if more else None
    return {"user_id": target, "events": rows, "next_cursor": next_cursor}
