"""The interface every email provider implements, and how their errors are classified.

A provider sends one message and answers its message id, or raises `ProviderError` saying
whether trying again later (or through another provider) can help: timeouts, 429, 5xx and
SMTP 4xx are retryable; SMTP 5xx, an invalid address, 4xx from an HTTP API are permanent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# Waits for room under the rate limits; a provider calls it just before the message
# leaves (after any wait of its own, e.g. for a free connection), so what the limiter
# counts is what the provider receives.
Gate = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class EmailMessage:
    delivery_id: int
    to: str
    sender: str
    subject: str
    html: str
    text: str
    # The same on every attempt at this delivery (`delivery_message_id`).
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    # Our ids only (never personal data): SendGrid custom_args, SES EmailTags.
    tags: dict[str, str] = field(default_factory=dict)
    category: str = ""


def delivery_message_id(delivery_id: int, created_at: datetime) -> str:
    """`<d{id}.{µs since the epoch, base 36}@mysetlist>`, one per delivery, so every attempt
    carries the same Message-ID. SMTP cannot tell a sender whether a message whose final
    reply never came was taken (RFC 1047; RFC 5321 §4.5.3.2.6): we send it again, and a
    receiver can drop the second copy by its Message-ID. The notification's creation time
    keeps ids unique when a rebuilt database starts its delivery ids again; it carries no
    personal data."""
    micros = int(created_at.timestamp() * 1_000_000)
    digits, stamp = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while micros:
        micros, rest = divmod(micros, 36)
        stamp = digits[rest] + stamp
    return f"<d{delivery_id}.{stamp or '0'}@mysetlist>"


class SendGateUnavailable(Exception):
    """The send rate limiter (its Redis) could not be asked: the message did not leave, so
    this is no attempt at it (a Redis outage must not use up a message's retries)."""


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        bounce: bool = False,
        recipient: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # The receiving server refused the address for good (a synchronous hard bounce).
        self.bounce = bounce
        # The receiving side refused this recipient (greylisting, a full mailbox): it says
        # nothing about the provider, and another provider would meet the same answer.
        self.recipient = recipient


def http_status_retryable(status: int) -> bool:
    """429 and 5xx may pass later; any other 4xx will fail the same way again."""
    return status == 429 or status >= 500


class EmailProvider(Protocol):
    name: str

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        """Hand `message` to the provider; its message id. Raises ProviderError."""
        ...

    async def close(self) -> None: ...
