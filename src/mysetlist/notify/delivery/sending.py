"""POST /api/notifications/send without the HTTP: who is reached, on which channels, when.

One request becomes, in ONE transaction, its notifications, their deliveries (one per
notification x channel x recipient), digest items and the jobs that drain the deliveries
(`core.job_queue.defer_in_transaction`): an accepted request is never lost, and a failed
one leaves nothing behind.

Smart delivery, decided here per user (transactional types bypass all but the channel's
reachability):
- channels: the forced ones or the type's defaults, minus what preferences turn off, minus
  what the user cannot receive (no verified email, a suppressed address, no live push
  subscription); "best" types then keep the one channel this user engages with most;
- quiet hours defer (never drop) email and push to the end of the hours, in the user's
  time zone (`preferences.quiet_hours_end`);
- a category the user gets as a daily or weekly digest becomes a digest item instead of
  an email now;
- a throttle per (user, type, key) window: a burst about one show is one notification.
The per-day frequency cap is enforced where sends happen (`drain.py`).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.job_queue import defer_in_transaction
from mysetlist.core.time_zones import load_time_zones
from mysetlist.notify.catalog import GENERIC_TEMPLATE, TEMPLATE_NAME, TYPES, NotificationType
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.delivery.suppression import blocks_email
from mysetlist.notify.errors import (
    IdempotencyKeyReused,
    InvalidField,
    MissingTemplateVariables,
    RequestInFlight,
)
from mysetlist.notify.preferences.model import (
    Preferences,
    digest_period,
    from_row,
    quiet_hours_end,
)
from mysetlist.notify.storable import StorableJson, StorableText
from mysetlist.notify.tasks import DELIVER, QUEUE
from mysetlist.notify.templates import store as template_store
from mysetlist.notify.templates.rendering import STANDARD_VARIABLES

_PACKAGE = "mysetlist.notify.delivery"
MAX_RECIPIENTS = 10_000
# Drain jobs per request: each drains every due delivery it can claim, so a few suffice.
MAX_JOBS_PER_REQUEST = 16
# An in-flight idempotency key older than this belongs to a request whose process died.
STALE_IN_FLIGHT = "5 minutes"
ChannelName = Literal["email", "push", "in_app"]


class Segment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["artist_followers", "show_voters"]
    artistId: int | None = Field(default=None, ge=1, le=2**63 - 1)
    showId: int | None = Field(default=None, ge=1, le=2**63 - 1)


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    userId: uuid.UUID | None = None
    userIds: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=MAX_RECIPIENTS)
    segment: Segment | None = None
    type: StorableText = Field(min_length=1, max_length=64)
    title: StorableText = Field(min_length=1, max_length=200)
    message: StorableText = Field(min_length=1, max_length=5000)
    data: StorableJson = Field(default_factory=dict)
    template: str | None = Field(default=None, pattern=TEMPLATE_NAME)
    variables: StorableJson = Field(default_factory=dict)
    channels: list[ChannelName] | None = Field(default=None, min_length=1)
    # Jobs fed by data pass one so that a re-run notifies nobody twice.
    dedupKey: StorableText | None = Field(default=None, min_length=1, max_length=200)


def _check(request: SendRequest) -> NotificationType:
    given = [n for n in ("userId", "userIds", "segment") if getattr(request, n) is not None]
    if len(given) != 1:
        raise InvalidField("userId", "give exactly one of userId, userIds or segment")
    if request.segment is not None:
        needs = "artistId" if request.segment.type == "artist_followers" else "showId"
        if getattr(request.segment, needs) is None:
            raise InvalidField(f"segment.{needs}", f"required for segment {request.segment.type}")
    ntype = TYPES.get(request.type)
    if ntype is None:
        raise InvalidField("type", f"unknown type; expected one of {sorted(TYPES)}")
    if request.channels is not None and len(set(request.channels)) != len(request.channels):
        raise InvalidField("channels", "each channel at most once")
    return ntype


@dataclass
class Plan:
    """What the request does to each recipient, before it is written."""

    user_ids: list[uuid.UUID] = field(default_factory=list)
    deliveries: dict[uuid.UUID, list[tuple[str, str, str, datetime, str | None]]] = field(
        default_factory=dict
    )  # user -> (channel, recipient, status, next_attempt_at, defer_reason)
    digests: dict[uuid.UUID, tuple[str, Any, datetime]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)


def choose_channels(
    ntype: NotificationType,
    forced: list[ChannelName] | None,
    prefs: Preferences,
    row: dict[str, Any],
    engagement: dict[str, float],
) -> list[str]:
    """The channels this user gets this type on (see the module's docstring)."""
    candidates = list(forced or ntype.channels)
    if not ntype.transactional:
        candidates = [c for c in candidates if prefs.allows(ntype.category, c)]
    reachable = []
    for channel in candidates:
        blocked = blocks_email(
            row["suppressed"], row.get("suppression_reason"), transactional=ntype.transactional
        )
        if channel == "email" and (not row["email_verified"] or blocked):
            continue
        if channel == "push" and not row["has_push"]:
            continue
        # A pick of one: in-app only reaches someone who comes back to the app.
        best_pick = ntype.routing == "best" and forced is None
        if channel == "in_app" and best_pick and not row["recently_active"]:
            continue
        reachable.append(channel)
    if ntype.routing == "best" and forced is None and len(reachable) > 1:
        order = {channel: i for i, channel in enumerate(reachable)}
        best = max(reachable, key=lambda c: (engagement.get(c, 0.0), -order[c]))
        return [best]
    return reachable


def plan_recipients(
    ntype: NotificationType,
    request: SendRequest,
    rows: list[dict[str, Any]],
    engagement: dict[uuid.UUID, dict[str, float]],
    settings: NotifySettings,
    now: datetime,
) -> Plan:
    plan = Plan()
    for row in rows:
        user_id: uuid.UUID = row["user_id"]
        prefs = from_row(row if row["has_preferences"] else None, settings, row["profile_timezone"])
        channels = choose_channels(ntype, request.channels, prefs, row, engagement.get(user_id, {}))
        if not channels:
            plan.skipped["no_channel"] += 1
            continue
        plan.user_ids.append(user_id)
        quiet_end = None if ntype.transactional else quiet_hours_end(prefs, now)
        frequency = prefs.digest_of(ntype.category)
        rows_for_user: list[tuple[str, str, str, datetime, str | None]] = []
        for channel in channels:
            if channel == "email" and not ntype.transactional and frequency != "immediate":
                period, due = digest_period(frequency, prefs.timezone, now)
                plan.digests[user_id] = (frequency, period, due)
                continue
            recipient = {"email": row["email_key"], "push": "all", "in_app": str(user_id)}[channel]
            # In-app is not held by quiet hours: it interrupts nobody (it waits in the inbox,
            # and the live stream reaches only someone with the app open at that moment).
            if quiet_end is not None and channel != "in_app":
                rows_for_user.append((channel, recipient, "deferred", quiet_end, "quiet_hours"))
            else:
                rows_for_user.append((channel, recipient, "queued", now, None))
        plan.deliveries[user_id] = rows_for_user
    return plan


def _request_hash(request: SendRequest) -> bytes:
    return hashlib.sha256(
        orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    ).digest()


async def _claim_key(
    db: Database, claims: Claims, key: str | None, digest: bytes, type_: str
) -> tuple[int | None, dict[str, Any] | None]:
    """(request id to proceed with, None) or (None, the first result to replay)."""
    params = {"key": key, "caller": claims.user_id, "hash": digest, "type": type_}
    async with db.transaction() as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "send_request_claim.sql"), params)
        if row is not None:
            return int(row["id"]), None
        existing = await fetch_one_in(
            conn, read_sql(_PACKAGE, "send_request_existing.sql"),
            {**params, "stale": STALE_IN_FLIGHT},
        )  # fmt: skip
        assert existing is not None
        if bytes(existing["request_hash"]) != digest:
            raise IdempotencyKeyReused()
        if existing["state"] == "done":
            response: dict[str, Any] = existing["response"]
            return None, response
        if not existing["stale"]:
            raise RequestInFlight()
        # Its process died before committing (nothing of it was written): take it over.
        await conn.execute(read_sql(_PACKAGE, "send_request_take_over.sql"), {"id": existing["id"]})
        return int(existing["id"]), None


async def _release_key(db: Database, request_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(read_sql(_PACKAGE, "send_request_release.sql"), {"id": request_id})


async def _template_for(db: Database, ntype: NotificationType, request: SendRequest) -> str:
    """The template the notification renders through. A named one needs every variable it
    declares (MissingTemplateVariables names the first missing). Without a name, the type's
    own template when the request gives all of its variables; otherwise the title and
    message are the whole notification, rendered through the generic layout (the spec's own
    send example)."""
    name = request.template or ntype.template
    async with db.transaction() as conn:
        source = await template_store.latest(conn, name)
    missing = sorted(set(source.variables) - STANDARD_VARIABLES - set(request.variables))
    if name == "weekly_digest":
        missing = [m for m in missing if m != "items"]
    if not missing:
        return name
    if request.template is None:
        return GENERIC_TEMPLATE
    raise MissingTemplateVariables(name, missing[0])


async def send(
    db: Database,
    settings: NotifySettings,
    claims: Claims,
    request: SendRequest,
    *,
    idempotency_key: str | None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Accept a send request; (the result, whether it is a replay of an earlier one)."""
    ntype = _check(request)
    await load_time_zones(db)  # recipients' stored zones are read through the validator
    template_name = await _template_for(db, ntype, request)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise InvalidField("Idempotency-Key", "must be 1 to 255 characters")
    request_id, replay = await _claim_key(
        db, claims, idempotency_key, _request_hash(request), request.type
    )
    if replay is not None:
        return replay, True
    assert request_id is not None
    try:
        result = await _write(
            db, settings, ntype, request, request_id, template_name, now or datetime.now(UTC)
        )
    except BaseException:
        await _release_key(db, request_id)
        raise
    return result, False


async def _write(
    db: Database,
    settings: NotifySettings,
    ntype: NotificationType,
    request: SendRequest,
    request_id: int,
    template_name: str,
    now: datetime,
) -> dict[str, Any]:
    user_ids = [request.userId] if request.userId else list(request.userIds or [])
    segment = request.segment
    async with db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            read_sql(_PACKAGE, "recipients.sql"),
            {
                "user_ids": user_ids,
                "artist_id": segment.artistId if segment else None,
                "show_id": segment.showId if segment else None,
            },
        )
        if request.userId is not None and not rows:
            raise InvalidField("userId", "no such user")
        if len(rows) > MAX_RECIPIENTS:
            raise InvalidField("segment", f"reaches {len(rows)} users, more than {MAX_RECIPIENTS}")
        engagement: dict[uuid.UUID, dict[str, float]] = {}
        if ntype.routing == "best" and rows:
            for e in await fetch_all_in(
                conn, read_sql(_PACKAGE, "engagement.sql"),
                {"user_ids": [r["user_id"] for r in rows]},
            ):  # fmt: skip
                engagement.setdefault(e["user_id"], {})[e["channel"]] = e["rate"]
        plan = plan_recipients(ntype, request, rows, engagement, settings, now)
        result = await _store(conn, settings, ntype, request, request_id, template_name, plan, now)
        result["skipped"] = dict(plan.skipped)
        if segment is None:
            result["skipped"]["unknown_users"] = len(set(user_ids)) - len(rows)
        await conn.execute(
            read_sql(_PACKAGE, "send_request_finish.sql"),
            {"id": request_id, "response": orjson.dumps(result).decode()},
        )
    return result


async def _store(
    conn: AsyncConnection[Any],
    settings: NotifySettings,
    ntype: NotificationType,
    request: SendRequest,
    request_id: int,
    template_name: str,
    plan: Plan,
    now: datetime,
) -> dict[str, Any]:
    inserted = await fetch_all_in(
        conn,
        read_sql(_PACKAGE, "notifications_insert.sql"),
        {
            "request_id": request_id, "type": ntype.name, "category": ntype.category,
            "title": request.title, "message": request.message,
            "data": orjson.dumps(request.data).decode(), "template": template_name,
            "variables": orjson.dumps(request.variables).decode(),
            "dedup_key": request.dedupKey, "user_ids": plan.user_ids,
        },
    )  # fmt: skip
    notification_of = {row["user_id"]: row["id"] for row in inserted}
    duplicates = len(plan.user_ids) - len(inserted)
    throttled = 0
    key = request.data.get(ntype.throttle_field) if ntype.throttle_field else None
    if key is not None and not ntype.transactional and notification_of:
        window = settings.throttle_window_seconds
        window_start = datetime.fromtimestamp(math.floor(now.timestamp() / window) * window, tz=UTC)
        claims = await fetch_all_in(
            conn, read_sql(_PACKAGE, "throttle_claim.sql"),
            {"type": ntype.name, "key": str(key), "window_start": window_start,
             "user_ids": list(notification_of), "notification_ids": list(notification_of.values())},
        )  # fmt: skip
        folded = {notification_of[c["user_id"]] for c in claims if not c["claimed"]}
        if folded:
            await conn.execute(
                read_sql(_PACKAGE, "notifications_delete.sql"), {"ids": list(folded)}
            )
            notification_of = {u: n for u, n in notification_of.items() if n not in folded}
            throttled = len(folded)
    columns: dict[str, list[Any]] = {
        k: []
        for k in ("notification_ids", "user_ids", "channels", "recipients", "statuses",
                  "next_attempt_at", "defer_reasons")
    }  # fmt: skip
    per_channel: Counter[str] = Counter()
    deferred = due = 0
    for user_id, notification_id in notification_of.items():
        for channel, recipient, status, at, reason in plan.deliveries.get(user_id, []):
            for name, value in zip(
                columns,
                (notification_id, user_id, channel, recipient, status, at, reason),
                strict=True,
            ):
                columns[name].append(value)
            per_channel[channel] += 1
            deferred += status == "deferred"
            due += status == "queued"
    if columns["notification_ids"]:
        await conn.execute(read_sql(_PACKAGE, "deliveries_insert.sql"), columns)
    digest_rows = [
        (u, notification_of[u], *plan.digests[u]) for u in plan.digests if u in notification_of
    ]
    if digest_rows:
        users, ids, freqs, periods, dues = zip(*digest_rows, strict=True)
        await conn.execute(
            read_sql(_PACKAGE, "digest_items_insert.sql"),
            {"user_ids": list(users), "notification_ids": list(ids), "frequencies": list(freqs),
             "period_starts": list(periods), "due_ats": list(dues)},
        )  # fmt: skip
    for _ in range(min(MAX_JOBS_PER_REQUEST, math.ceil(due / settings.batch_size))):
        await defer_in_transaction(conn, DELIVER, queue=QUEUE)
    return {
        "requestId": request_id,
        "notifications": len(notification_of),
        "deliveries": dict(per_channel),
        "deferred": deferred,
        "digested": len(digest_rows),
        "throttled": throttled,
        "duplicates": duplicates,
    }


async def history(
    db: Database, *, limit: int, before: int | None, request_id: int | None
) -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        return await fetch_all_in(
            conn, read_sql(_PACKAGE, "send_history.sql"),
            {"limit": limit, "before": before, "request_id": request_id},
        )  # fmt: skip
