"""The channel interface deliveries go through, and the email channel.

A channel takes a chunk of claimed deliveries (rows of `deliveries_claim.sql`) and answers
one `Outcome` each; the drain (`drain.py`) writes them in the claiming transaction.
In-app (`inbox/channel.py`) and web push (`push/channel.py`) are channels too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import psycopg
from psycopg import AsyncConnection

from mysetlist.core.db import fetch_all_in
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.notify import metrics
from mysetlist.notify.catalog import TRANSACTIONAL_CATEGORIES
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.providers.base import (
    EmailMessage,
    ProviderError,
    SendGateUnavailable,
    delivery_message_id,
)
from mysetlist.notify.providers.failover import FailoverEmail
from mysetlist.notify.signed_links import SignedLinks
from mysetlist.notify.templates import store as template_store
from mysetlist.notify.templates.rendering import (
    DEADLINE,
    INLINE_RENDER_SECONDS,
    RENDER_SECONDS,
    TemplateProblem,
    TemplateSource,
    render,
)

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.notify.delivery"
Row = dict[str, Any]
_HREF = re.compile(r'href="(https?://[^"]+)"')


@dataclass
class Outcome:
    delivery_id: int
    status: str  # sent, delivered, deferred, bounced, dropped, failed
    provider: str | None = None
    message_id: str | None = None
    error: str | None = None
    attempted: bool = True
    retryable: bool = False
    retry_after: float | None = None
    next_attempt_at: datetime | None = None
    defer_reason: str | None = None
    suppress_hash: bytes | None = None
    links: list[str] = field(default_factory=list)


@dataclass
class DeliveryContext:
    """What channels share while a chunk is sent: the claiming transaction's connection
    (reach it through `fetch_all`/`execute`), settings and keys."""

    conn: AsyncConnection[Any]
    settings: NotifySettings
    cipher: FieldCipher
    links: SignedLinks
    # Channels run concurrently on one connection, one statement at a time. `isolated`:
    # each statement in its own savepoint, so one that fails rolls back only itself. The
    # drain's usual path instead holds one savepoint for the whole chunk (savepoints per
    # statement were measurable drain CPU): a failing statement is then noted in
    # `failed`, and the drain goes back to that savepoint and takes the isolated path.
    isolated: bool = True
    failed: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def fetch_all(self, query: str, params: Any = None) -> list[Row]:
        async with self._lock, self._statement():
            return await fetch_all_in(self.conn, query, params)

    async def execute(self, query: str, params: Any = None) -> None:
        async with self._lock, self._statement():
            await self.conn.execute(query, params)

    async def template(self, name: str, locale: str) -> TemplateSource:
        async with self._lock, self._statement():
            return await template_store.latest(self.conn, name, locale)

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[None]:
        if self.isolated:
            async with self.conn.transaction():
                yield
            return
        try:
            yield
        except psycopg.Error:
            self.failed = True  # the chunk's transaction is aborted from here on
            raise


def describe(exc: BaseException) -> str:
    """An exception as a delivery's last_error: its own words, or its type."""
    detail = getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class Channel(Protocol):
    name: str

    async def deliver(self, rows: Sequence[Row], ctx: DeliveryContext) -> list[Outcome]: ...

    async def close(self) -> None: ...


def unsubscribe_urls(ctx: DeliveryContext, user_id: str, category: str) -> tuple[str, str]:
    """(one-click https URL, mailto URL) for List-Unsubscribe."""
    token = ctx.links.unsubscribe_token(user_id, category)
    base = ctx.settings.public_url.rstrip("/")
    mailto = f"mailto:{ctx.settings.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}"
    return f"{base}/u/{token}", mailto


def track_links(
    html: str, ctx: DeliveryContext, delivery_id: int, skip: str
) -> tuple[str, list[str]]:
    """Links through our click redirect (destinations kept server-side) and an open pixel."""
    base = ctx.settings.public_url.rstrip("/")
    destinations: list[str] = []

    def replace(match: re.Match[str]) -> str:
        url = match.group(1)
        if url == skip or url.startswith(base + "/u/"):
            return match.group(0)
        destinations.append(url.replace("&amp;", "&"))
        token = ctx.links.click_token(delivery_id, len(destinations) - 1)
        return f'href="{base}/api/notifications/t/c/{token}"'

    tracked = _HREF.sub(replace, html)
    pixel = (
        f'<img src="{base}/api/notifications/t/o/{ctx.links.open_token(delivery_id)}.gif"'
        ' width="1" height="1" alt="">'
    )
    return tracked.replace("</body>", pixel + "</body>", 1), destinations


class EmailChannel:
    name = "email"

    def __init__(self, email: FailoverEmail) -> None:
        self.email = email
        # Templates whose render outgrew the inline budget once: rendered in a thread.
        self._slow_templates: set[TemplateSource] = set()

    def compose(
        self, row: Row, source: TemplateSource, ctx: DeliveryContext,
        seconds: float = RENDER_SECONDS,
    ) -> tuple[EmailMessage, list[str]]:  # fmt: skip
        settings = ctx.settings
        user_id = str(row["user_id"])
        transactional = row["category"] in TRANSACTIONAL_CATEGORIES
        headers = {"X-MySetlist-Delivery": str(row["id"])}
        variables: dict[str, Any] = {
            **(row["variables"] or {}),
            "user_name": row["display_name"],
            "app_url": settings.app_url,
            "title": row["title"],
            "message": row["message"],
            "unsubscribe_url": "",
        }
        footer = '<p class="footer">MySetlist</p>'
        unsubscribe_page = ""
        if not transactional:
            unsubscribe_page, mailto = unsubscribe_urls(ctx, user_id, row["category"])
            variables["unsubscribe_url"] = unsubscribe_page
            headers["List-Unsubscribe"] = f"<{unsubscribe_page}>, <{mailto}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            footer = (
                '<p class="footer">You get this because of your MySetlist notification settings. '
                f'<a href="{unsubscribe_page}">Unsubscribe or change preferences</a>.</p>'
            )
        rendered = render(source, variables, footer_html=footer, seconds=seconds)
        html, destinations = track_links(rendered.html, ctx, row["id"], unsubscribe_page)
        text = rendered.text
        if unsubscribe_page:
            text += f"\nUnsubscribe or change preferences: {unsubscribe_page}\n"
        address = ctx.cipher.decrypt(bytes(row["email_encrypted"]), context=b"users.email")
        message = EmailMessage(
            delivery_id=row["id"],
            to=address,
            sender=settings.email_from,
            subject=rendered.subject,
            html=html,
            text=text,
            message_id=delivery_message_id(row["id"], row["notification_created_at"]),
            headers=headers,
            tags={"delivery_id": str(row["id"]), "notification_id": str(row["notification_id"])},
            category=row["type"],
        )
        return message, destinations

    def _compose_or_fail(
        self, row: Row, source: TemplateSource | Outcome, ctx: DeliveryContext, *, inline: bool
    ) -> tuple[EmailMessage, list[str]] | Outcome | None:
        """The message of one delivery, or that delivery's own failure; None: inline, its
        template needed more time than the inline budget (render it in a thread)."""
        if isinstance(source, Outcome):
            return Outcome(row["id"], "failed", error=source.error, attempted=False)
        try:
            return self.compose(
                row, source, ctx, INLINE_RENDER_SECONDS if inline else RENDER_SECONDS
            )
        except TemplateProblem as exc:
            if inline and exc.cause == DEADLINE:
                self._slow_templates.add(source)
                return None
            return Outcome(row["id"], "failed", error=f"template: {exc}", attempted=False)
        except Exception as exc:
            # e.g. an address that no longer decrypts: this delivery fails, the chunk goes on
            # (raising would roll the chunk back and claim the same rows again, forever).
            log.exception("cannot compose delivery %s", row["id"])
            return Outcome(row["id"], "failed", error=f"compose: {type(exc).__name__}: {exc}",
                           attempted=False)  # fmt: skip

    async def _send(self, row: Row, message: EmailMessage, destinations: list[str]) -> Outcome:
        try:
            sent = await self.email.send(message)
        except SendGateUnavailable as exc:
            # It never left: deferred without counting an attempt (a Redis outage longer
            # than the retry schedule would otherwise fail every message queued meanwhile).
            metrics.DELIVERIES.labels("email", self.email.current, "error").inc()
            return Outcome(row["id"], "deferred", error=str(exc), retryable=True,
                           attempted=False)  # fmt: skip
        except Exception as exc:
            if not isinstance(exc, ProviderError):
                # Contained: the chunk's other messages may have left already, and their
                # outcomes must commit (an exception here would roll them back and send
                # them again). This one is retried.
                log.exception("unexpected error sending delivery %s", row["id"])
                exc = ProviderError(f"{type(exc).__name__}: {exc}", retryable=True)
            metrics.DELIVERIES.labels("email", self.email.current, "error").inc()
            if exc.retryable:
                return Outcome(row["id"], "deferred", error=str(exc), retryable=True,
                               retry_after=exc.retry_after)  # fmt: skip
            return Outcome(
                row["id"], "bounced" if exc.bounce else "failed", error=str(exc),
                suppress_hash=bytes(row["email_hash"]) if exc.bounce else None,
            )  # fmt: skip
        metrics.DELIVERIES.labels("email", sent.provider, "sent").inc()
        return Outcome(row["id"], "sent", provider=sent.provider, message_id=sent.message_id,
                       links=destinations)  # fmt: skip

    async def deliver(self, rows: Sequence[Row], ctx: DeliveryContext) -> list[Outcome]:
        sources: dict[tuple[str, str], TemplateSource | Outcome] = {}
        for row in rows:
            key = (row["template_name"], row["locale"])
            if key not in sources:
                try:
                    sources[key] = await ctx.template(*key)
                except Exception as exc:
                    # e.g. a template no longer there: its deliveries fail, the rest go.
                    sources[key] = Outcome(0, "failed", attempted=False,
                                           error=f"template: {describe(exc)}")  # fmt: skip

        def compose(row: Row, *, inline: bool) -> tuple[EmailMessage, list[str]] | Outcome | None:
            source = sources[(row["template_name"], row["locale"])]
            return self._compose_or_fail(row, source, ctx, inline=inline)

        # Renders run on the loop under a small budget; a template that needs more goes to
        # a worker thread with the full budget (from then on in this process), so a
        # runaway template never holds the event loop beyond INLINE_RENDER_SECONDS.
        def known_slow(row: Row) -> bool:
            source = sources[(row["template_name"], row["locale"])]
            return isinstance(source, TemplateSource) and source in self._slow_templates

        composed = [None if known_slow(r) else compose(r, inline=True) for r in rows]
        slow = [i for i, item in enumerate(composed) if item is None]
        if slow:
            done = await asyncio.to_thread(lambda: [compose(rows[i], inline=False) for i in slow])
            for i, item in zip(slow, done, strict=True):
                composed[i] = item

        async def send(row: Row, item: tuple[EmailMessage, list[str]] | Outcome | None) -> Outcome:
            assert item is not None  # rendered in the thread when not inline
            return item if isinstance(item, Outcome) else await self._send(row, *item)

        return list(
            await asyncio.gather(
                *(send(row, item) for row, item in zip(rows, composed, strict=True))
            )
        )

    async def close(self) -> None:
        await self.email.close()


class UnconfiguredChannel:
    """A channel without a provider in this deployment: its deliveries fail, saying so."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def deliver(self, rows: Sequence[Row], ctx: DeliveryContext) -> list[Outcome]:
        return [
            Outcome(
                row["id"], "failed", error=f"no {self.name} provider configured", attempted=False
            )
            for row in rows
        ]

    async def close(self) -> None:
        pass


ChannelFactory = Callable[[NotifySettings, str], Channel]
_FACTORIES: dict[str, ChannelFactory] = {}


def register_channel(name: str, factory: ChannelFactory) -> None:
    """Plug a channel in (web push does): `factory(settings, redis_url)` builds it per process."""
    _FACTORIES[name] = factory


def channel_factories() -> dict[str, ChannelFactory]:
    return dict(_FACTORIES)
