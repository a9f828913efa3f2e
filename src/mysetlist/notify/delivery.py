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

from mysetlist.core.db import Database, fetch_all_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.notify.catalog import TRANSACTIONAL_CATEGORIES
from mysetlist.notify.channels import (
    Channel,
    DeliveryContext,
    EmailChannel,
    InAppChannel,
    Outcome,
    Row,
    UnconfiguredChannel,
    channel_factories,
)
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.preferences import from_row, next_local_midnight, quiet_hours_end
from mysetlist.notify.providers.base import EmailProvider
from mysetlist.notify.providers.failover import FailoverEmail
from mysetlist.notify.send_rate import SendRateLimiter
from mysetlist.notify.signed_links import SignedLinks
from mysetlist.notify.suppression import blocks_email

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.notify"


def email_providers(settings: NotifySettings) -> list[EmailProvider]:
    providers: list[EmailProvider] = []
    for name in settings.email_providers:
        if name == "smtp":
            from mysetlist.notify.providers.smtp import SmtpProvider

            providers.append(
                SmtpProvider(
                    settings.smtp_url,
                    connections=settings.smtp_connections,
                    timeout=settings.provider_timeout_seconds,
                )
            )
        elif name == "sendgrid":
            from mysetlist.notify.providers.sendgrid import SendGridProvider

            providers.append(
                SendGridProvider(
                    settings.sendgrid_api_url,
                    settings.sendgrid_api_key or "",
                    timeout=settings.provider_timeout_seconds,
                )
            )
        elif name == "ses":
            from mysetlist.notify.providers.ses import SesProvider

            providers.append(
                SesProvider(
                    settings.aws_region,
                    endpoint_url=settings.ses_endpoint_url,
                    configuration_set=settings.ses_configuration_set,
                    timeout=settings.provider_timeout_seconds,
                )
            )
    return providers


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
            from mysetlist.notify.push import PushChannel

            channels["push"] = PushChannel(settings)
        for name, factory in channel_factories().items():
            channels[name] = factory(settings, redis_url)
        return cls(settings, cipher, SignedLinks(secret), channels)

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    def _precheck(self, row: Row, now: datetime, sent_today: Counter[Any]) -> Outcome | None:
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
        prefs = from_row(
            row if row["has_preferences"] else None, self.settings, row["profile_timezone"]
        )
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
        """A retryable failure becomes a deferred retry, or `failed` past maxRetries."""
        if outcome.status == "deferred" and outcome.retryable:
            if row["attempts"] + 1 > self.settings.max_retries:
                outcome.status = "failed"
            else:
                delay = retry_delay(self.settings, row["attempts"], outcome.retry_after)
                outcome.next_attempt_at = now + delay
                outcome.defer_reason = "retry"
        return outcome

    async def deliver_chunk(self, db: Database, *, now: datetime | None = None) -> int:
        """Claim, send and record one chunk; the number of deliveries claimed. `now` is
        the clock's reading (tests pass one to stand at another time of year)."""
        now = now or datetime.now(UTC)
        async with db.transaction() as conn:
            rows = await fetch_all_in(
                conn,
                read_sql(_PACKAGE, "deliveries_claim.sql"),
                {"limit": self.settings.batch_size, "now": now},
            )
            if not rows:
                return 0
            sent_today: Counter[Any] = Counter()
            counted = [r["user_id"] for r in rows if r["category"] not in TRANSACTIONAL_CATEGORIES]
            if counted:
                params = {"user_ids": counted, "now": now,
                          "transactional": list(TRANSACTIONAL_CATEGORIES)}  # fmt: skip
                for r in await fetch_all_in(
                    conn, read_sql(_PACKAGE, "deliveries_sent_today.sql"), params
                ):
                    sent_today[r["user_id"]] = r["sent"]
            outcomes: list[Outcome] = []
            to_send: dict[str, list[Row]] = defaultdict(list)
            for row in rows:
                early = self._precheck(row, now, sent_today)
                if early is None:
                    to_send[row["channel"]].append(row)
                else:
                    outcomes.append(early)
            ctx = DeliveryContext(conn, self.settings, self.cipher, self.links)
            by_id = {row["id"]: row for row in rows}
            results = await asyncio.gather(
                *(self.channels[channel].deliver(batch, ctx) for channel, batch in to_send.items())
            )
            for batch_outcomes in results:
                outcomes.extend(self._settle(by_id[o.delivery_id], o, now) for o in batch_outcomes)
            await self._record(conn, outcomes)
        return len(rows)

    async def _record(self, conn: Any, outcomes: list[Outcome]) -> None:
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
