"""Email through the first healthy provider, with a circuit breaker per provider.

A provider that fails `failures` times in a row (retryable errors: it is down or
overloaded) is opened for `cooldown` seconds and mail goes through the next configured
provider. After the cooldown one trial message goes to it again; when that succeeds,
traffic returns. Both switches are logged and counted (`mysetlist_notify_provider_switches_total`).
A permanent error (a refused address) is the message's fault, not the provider's: it is
neither retried elsewhere nor counted against the provider.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from mysetlist.notify import metrics
from mysetlist.notify.providers.base import (
    EmailMessage,
    EmailProvider,
    ProviderError,
    SendGateUnavailable,
)

log = logging.getLogger(__name__)


@dataclass
class CircuitBreaker:
    failures_to_open: int
    cooldown: float
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    def allows(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if now - self.opened_at >= self.cooldown and not self.trial_in_flight:
            self.trial_in_flight = True  # half-open: one message tries it
            return True
        return False

    def succeeded(self) -> bool:
        """Closed again; True when it was open (traffic returns)."""
        was_open = self.opened_at is not None
        self.failures, self.opened_at, self.trial_in_flight = 0, None, False
        return was_open

    def failed(self, now: float) -> bool:
        """One more failure; True when this one opened it (traffic leaves)."""
        was_open = self.opened_at is not None
        self.failures += 1
        self.trial_in_flight = False
        if was_open or self.failures >= self.failures_to_open:
            self.opened_at = now
        return not was_open and self.opened_at is not None


@dataclass(frozen=True)
class Sent:
    provider: str
    message_id: str


class FailoverEmail:
    def __init__(
        self,
        providers: Sequence[EmailProvider],
        *,
        failures_to_open: int,
        cooldown: float,
        before_send: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("at least one email provider is needed")
        self.providers = list(providers)
        self.breakers = {p.name: CircuitBreaker(failures_to_open, cooldown) for p in providers}
        self._before_send = before_send
        self._clock = clock

    @property
    def current(self) -> str:
        """The provider mail goes to now: the first one whose breaker is not open."""
        for provider in self.providers:
            if self.breakers[provider.name].opened_at is None:
                return provider.name
        return self.providers[0].name

    def _next_after(self, name: str) -> str:
        names = [p.name for p in self.providers]
        later = names[names.index(name) + 1 :]
        return later[0] if later else "none"

    def _switched(self, source: str, target: str, why: str) -> None:
        # Counted on the breaker's transitions, not per message: concurrent sends would
        # otherwise count every interleaving as a switch.
        log.warning("email provider switch: %s -> %s (%s)", source, target, why)
        metrics.PROVIDER_SWITCHES.labels(source, target).inc()

    async def send(self, message: EmailMessage) -> Sent:
        errors: list[str] = []
        for provider in self.providers:
            breaker = self.breakers[provider.name]
            if not breaker.allows(self._clock()):
                continue
            gate = None
            if self._before_send is not None:
                gate = functools.partial(self._gate, self._before_send, provider.name)
            try:
                message_id = await provider.send(message, gate=gate)
            except ProviderError as exc:
                # A permanent error, or a transient refusal of this one recipient
                # (greylisting): the message's matter, not the provider's. Neither opens the
                # breaker (one greylisting domain would pause all mail) nor fails over.
                if not exc.retryable or exc.recipient:
                    if breaker.succeeded():  # it answered: the provider is up
                        self._switched(self._next_after(provider.name), provider.name, "recovered")
                    raise
                metrics.PROVIDER_ERRORS.labels(provider.name).inc()
                if breaker.failed(self._clock()):
                    self._switched(provider.name, self._next_after(provider.name), "failing")
                errors.append(f"{provider.name}: {exc}")
                continue
            if breaker.succeeded():
                self._switched(self._next_after(provider.name), provider.name, "recovered")
            return Sent(provider.name, message_id)
        raise ProviderError(
            "; ".join(errors) or "every email provider is paused by its circuit breaker",
            retryable=True,
        )

    @staticmethod
    async def _gate(before_send: Callable[[str], Awaitable[None]], name: str) -> None:
        try:
            await before_send(name)
        except Exception as exc:
            raise SendGateUnavailable(
                f"send rate limiter unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()
