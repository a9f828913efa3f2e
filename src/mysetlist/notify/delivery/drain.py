"""The drain: claim due deliveries in chunks, check them again, send, record the outcome.

Each chunk (`batchSize` rows) is claimed `FOR UPDATE SKIP LOCKED` and its outcomes are
written in the same transaction, so several drain jobs (in one worker or many) share the
work without overlap, and a worker killed mid-chunk leaves its rows queued for the next
drain; only messages a provider accepted in the instant before the kill can go twice.

Before sending, each delivery is checked against the present (preferences and
suppressions may have changed since it was queued): a turned-off channel or a suppressed
address drops it, quiet hours and the per-day frequency cap defer it. Transactional types
skip all but the suppression check. A retryable failure defers it with exponential backoff
and jitter until `maxRetries`, then it fails.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from mysetlist.core.db import Database, fetch_all_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.time_zones import load_time_zones
from mysetlist.notify.catalog import TRANSACTIONAL_CATEGORIES
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.delivery.channels import (
    Channel,
    DeliveryContext,
    EmailChannel,
    Outcome,
    Row,
    UnconfiguredChannel,
    channel_factories,
    describe,
)
from mysetlist.notify.delivery.send_rate import SendRateLimiter
from mysetlist.notify.delivery.suppression import blocks_email
from mysetlist.notify.inbox.channel import InAppChannel
from mysetlist.notify.preferences.model import (
    Preferences,
    from_row,
    last_local_midnight,
    next_local_midnight,
    quiet_hours_end,
)
from mysetlist.notify.providers.configured import email_providers
from mysetlist.notify.providers.failover import FailoverEmail
from mysetlist.notify.signed_links import SignedLinks

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.notify.delivery"


def _storable(text: str | None, limit: int) -> str | None:
    """Text from providers and exceptions as a text column takes it (no NUL), bounded."""
    return None if text is None else text.replace("\x00", "\ufffd")[:limit]


def _storable_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    """`outcomes`, their provider texts made storable (in place)."""
    for outcome in outcomes:
        outcome.error = _storable(outcome.error, 2000)
        outcome.message_id = _storable(outcome.message_id, 500)
    return outcomes


def _own_failure(row: Row, stage: str, exc: Exception) -> Outcome:
    log.exception("delivery %s failed at %s", row["id"], stage)
    return Outcome(row["id"], "failed", error=f"{stage}: {describe(exc)}", attempted=False)


def retry_delay(settings: NotifySettings, attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with full jitter around retryDelayMs; a provider's Retry-After wins."""
    if retry_after is not None:
        return timedelta(seconds=retry_after)
    base = settings.retry_delay_ms / 1000 * (2**attempts)
    return timedelta(seconds=base * random.uniform(0.5, 1.5))


@dataclass
class Deliverer:
    """What a process needs to deliver: channels (with provider connections), the rate
    limiter and the signing keys. One per process, reused by every drain job."""

    settings: NotifySettings
    cipher: FieldCipher
    links: SignedLinks
    channels: dict[str, Channel]

    @classmethod
    def build(
        cls, settings: NotifySettings, cipher: FieldCipher, secret: bytes, redis_url: str,
        *, key_prefix: str = "mysetlist",
    ) -> Deliverer:  # fmt: skip
        limiter = SendRateLimiter(
            redis_url,
            per_minute=settings.rate_limit_per_minute,
            per_provider=settings.provider_rate_limits,
            key_prefix=key_prefix,
        )
        email = FailoverEmail(
            email_providers(settings),
            failures_to_open=settings.breaker_failures,
            cooldown=settings.breaker_cooldown_seconds,
            before_send=limiter.before_send if settings.rate_limit_per_minute else None,
        )
        channels: dict[str, Channel] = {
            "email": EmailChannel(email),
            "in_app": InAppChannel(),
            "push": UnconfiguredChannel("push"),
        }
        if settings.vapid_private_key and settings.vapid_subject:
            from mysetlist.notify.push.channel import PushChannel

            channels["push"] = PushChannel(settings)
        for name, factory in channel_factories().items():
            channels[name] = factory(settings, redis_url)
        return cls(settings, cipher, SignedLinks(secret), channels)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    def _precheck(
        self, row: Row, prefs: Preferences, now: datetime, sent_today: Counter[Any]
    ) -> Outcome | None:
        """Drop or defer a delivery the present no longer allows; None: send it."""
        category = row["category"]
        blocked = blocks_email(
            row["suppressed"], row["suppression_reason"],
            transactional=category in TRANSACTIONAL_CATEGORIES,
        )  # fmt: skip
        if row["channel"] == "email" and (blocked or not row["email_verified"]):
            return Outcome(row["id"], "dropped", error="address suppressed or unverified",
                           attempted=False)  # fmt: skip
        if category in TRANSACTIONAL_CATEGORIES:
            return None
        if not prefs.allows(category, row["channel"]):
            return Outcome(row["id"], "dropped", error="turned off in preferences", attempted=False)
        if row["channel"] == "in_app":
            return None
        quiet_end = quiet_hours_end(prefs, now)
        if quiet_end is not None:
            return Outcome(row["id"], "deferred", attempted=False, next_attempt_at=quiet_end,
                           defer_reason="quiet_hours")  # fmt: skip
        if sent_today[row["user_id"]] >= self.settings.frequency_cap_per_day:
            return Outcome(
                row["id"], "deferred", attempted=False,
                next_attempt_at=next_local_midnight(prefs.timezone, now),
                defer_reason="frequency_cap",
            )  # fmt: skip
        sent_today[row["user_id"]] += 1
        return None

    def _settle(self, row: Row, outcome: Outcome, now: datetime) -> Outcome:
        """A retryable failure becomes a deferred retry, or `failed` past maxRetries (only
        attempts count: a message that never left is retried without using one up)."""
        if outcome.status == "deferred" and outcome.retryable:
            if outcome.attempted and row["attempts"] + 1 > self.settings.max_retries:
                outcome.status = "failed"
            else:
                delay = retry_delay(self.settings, row["attempts"], outcome.retry_after)
                outcome.next_attempt_at = now + delay
                outcome.defer_reason = "retry"
        return outcome

    async def _sent_today(
        self, conn: Any, prepared: list[tuple[Row, Preferences]], now: datetime
    ) -> Counter[Any]:
        """Product messages each user got since their local midnight (the daily cap)."""
        since: dict[Any, datetime] = {}
        for row, prefs in prepared:
            if row["category"] not in TRANSACTIONAL_CATEGORIES and row["user_id"] not in since:
                since[row["user_id"]] = last_local_midnight(prefs.timezone, now)
        sent_today: Counter[Any] = Counter()
        if since:
            params = {"user_ids": list(since), "since": list(since.values()),
                      "transactional": list(TRANSACTIONAL_CATEGORIES)}  # fmt: skip
            for r in await fetch_all_in(
                conn, read_sql(_PACKAGE, "deliveries_sent_today.sql"), params
            ):
                sent_today[r["user_id"]] = r["sent"]
        return sent_today

    async def _send_batch(
        self, channel: str, batch: list[Row], ctx: DeliveryContext
    ) -> list[Outcome]:
        """One channel's outcomes; an exception out of a channel defers its own rows for a
        retry (channels contain per-message errors themselves: this is the last guard)."""
        try:
            return await self.channels[channel].deliver(batch, ctx)
        except Exception as exc:
            log.exception("channel %s failed on a batch of %d", channel, len(batch))
            return [Outcome(row["id"], "deferred", error=f"{channel}: {describe(exc)}",
                            retryable=True) for row in batch]  # fmt: skip

    async def deliver_chunk(self, db: Database, *, now: datetime | None = None) -> int:
        """Claim, send and record one chunk; the number of deliveries claimed. `now` is
        the clock's reading (tests pass one to stand at another time of year).

        Isolation: whatever one delivery holds (a bad stored zone, an address the server
        refuses, a template that fails, a push endpoint that raises) ends as that
        delivery's own outcome; the chunk's other outcomes commit, so nothing a provider
        accepted is claimed and sent again."""
        now = now or datetime.now(UTC)
        await load_time_zones(db)
        async with db.transaction() as conn:
            rows = await fetch_all_in(
                conn,
                read_sql(_PACKAGE, "deliveries_claim.sql"),
                {"limit": self.settings.batch_size, "now": now},
            )
            if not rows:
                return 0
            outcomes: list[Outcome] = []
            prepared: list[tuple[Row, Preferences]] = []
            for row in rows:
                try:
                    prefs = from_row(
                        row if row["has_preferences"] else None, self.settings,
                        row["profile_timezone"],
                    )  # fmt: skip
                except Exception as exc:
                    outcomes.append(_own_failure(row, "preferences", exc))
                else:
                    prepared.append((row, prefs))
            sent_today = await self._sent_today(conn, prepared, now)
            to_send: dict[str, list[Row]] = defaultdict(list)
            for row, prefs in prepared:
                try:
                    early = self._precheck(row, prefs, now, sent_today)
                except Exception as exc:
                    outcomes.append(_own_failure(row, "precheck", exc))
                    continue
                if early is None:
                    to_send[row["channel"]].append(row)
                else:
                    outcomes.append(early)
            by_id = {row["id"]: row for row in rows}
            await self._send_and_record(conn, to_send, outcomes, by_id, now)
        return len(rows)

    async def _send(
        self, ctx: DeliveryContext, to_send: dict[str, list[Row]], by_id: dict[Any, Row],
        now: datetime,
    ) -> list[Outcome]:  # fmt: skip
        """Every channel's outcomes, settled (a retryable failure deferred, or failed)."""
        results = await asyncio.gather(
            *(self._send_batch(channel, batch, ctx) for channel, batch in to_send.items())
        )
        return [self._settle(by_id[o.delivery_id], o, now) for batch in results for o in batch]

    async def _send_and_record(
        self, conn: Any, to_send: dict[str, list[Row]], early: list[Outcome],
        by_id: dict[Any, Row], now: datetime,
    ) -> None:  # fmt: skip
        """Send the chunk and record all its outcomes under ONE savepoint. Should a
        statement in it fail (a channel's or the record's), the chunk goes back to that
        savepoint and takes the careful path: the deliveries nothing was handed out for are
        sent again with a savepoint per statement (a failure is then its own delivery's),
        and outcomes are recorded one by one if need be. The outcomes of messages a
        provider already took are kept as they are: nothing sent is sent again."""
        ctx = DeliveryContext(conn, self.settings, self.cipher, self.links, isolated=False)
        sent: list[Outcome] | None = None
        try:
            async with conn.transaction() as chunk:
                sent = await self._send(ctx, to_send, by_id, now)
                if not ctx.failed:
                    await self._record_batch(conn, _storable_outcomes([*early, *sent]))
                    return
                raise psycopg.Rollback(chunk)
        except Exception:
            if sent is None:
                raise  # not a statement's failure: what went out is unknown
            log.exception("recording a chunk's outcomes failed")
        log.warning("a statement failed in a chunk; its unsent deliveries go again, isolated")
        assert sent is not None
        handed_out = [o for o in sent if o.attempted]
        taken = {o.delivery_id for o in handed_out}
        again = {channel: [row for row in batch if row["id"] not in taken]
                 for channel, batch in to_send.items()}  # fmt: skip
        isolated = DeliveryContext(conn, self.settings, self.cipher, self.links)
        retried = await self._send(isolated, {c: b for c, b in again.items() if b}, by_id, now)
        await self._record(conn, [*early, *handed_out, *retried])

    async def _record(self, conn: Any, outcomes: list[Outcome]) -> None:
        """Write the chunk's outcomes. Should the batch statement fail (it should not: the
        text is cleaned first), each outcome is written alone, so the others still commit."""
        _storable_outcomes(outcomes)
        try:
            async with conn.transaction():
                await self._record_batch(conn, outcomes)
        except Exception:
            log.exception("recording %d outcomes failed; recording each alone", len(outcomes))
            for outcome in outcomes:
                try:
                    async with conn.transaction():
                        await self._record_batch(conn, [outcome])
                except Exception as exc:
                    log.exception("cannot record delivery %s", outcome.delivery_id)
                    fallback = Outcome(outcome.delivery_id, "failed",
                                       error=_storable(f"record: {describe(exc)}", 2000),
                                       attempted=outcome.attempted)  # fmt: skip
                    async with conn.transaction():
                        await self._record_batch(conn, [fallback])

    async def _record_batch(self, conn: Any, outcomes: list[Outcome]) -> None:
        await conn.execute(
            read_sql(_PACKAGE, "deliveries_update.sql"),
            {
                "ids": [o.delivery_id for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "providers": [o.provider for o in outcomes],
                "message_ids": [o.message_id for o in outcomes],
                "errors": [o.error for o in outcomes],
                "attempted": [o.attempted for o in outcomes],
                "next_attempt_at": [o.next_attempt_at for o in outcomes],
                "defer_reasons": [o.defer_reason for o in outcomes],
            },
        )
        links = [(o.delivery_id, i, url) for o in outcomes for i, url in enumerate(o.links)]
        if links:
            ids, positions, urls = zip(*links, strict=True)
            await conn.execute(
                read_sql(_PACKAGE, "tracked_links_insert.sql"),
                {"delivery_ids": list(ids), "positions": list(positions), "urls": list(urls)},
            )
        bounced = [o for o in outcomes if o.suppress_hash is not None]
        if bounced:
            await conn.execute(
                read_sql(_PACKAGE, "suppressions_insert.sql"),
                {
                    "hashes": [o.suppress_hash for o in bounced],
                    "reasons": ["bounce"] * len(bounced),
                    "sources": ["smtp"] * len(bounced),
                    "details": [o.error for o in bounced],
                },
            )

    async def drain(
        self, db: Database, *, budget_seconds: float | None = None, now: datetime | None = None
    ) -> int:
        """Deliver chunks until none is due or the time budget is spent; how many claimed."""
        deadline = time.monotonic() + (budget_seconds or self.settings.drain_budget_seconds)
        total = 0
        while time.monotonic() < deadline:
            claimed = await self.deliver_chunk(db, now=now)
            if claimed == 0:
                break
            total += claimed
        return total
