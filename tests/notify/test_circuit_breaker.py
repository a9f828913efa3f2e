"""The failover chain's circuit breaker on a hand-moved clock: it opens after N retryable
failures in a row, lets one trial through after the cooldown, and closes on its success;
a permanent error is the message's fault and neither opens it nor fails over."""

from __future__ import annotations

import dataclasses

import pytest

from mysetlist.notify import metrics
from mysetlist.notify.providers.base import EmailMessage, Gate, ProviderError
from mysetlist.notify.providers.failover import FailoverEmail
from mysetlist.notify.providers.smtp import SmtpProvider
from tests.notify.conftest import SmtpSink

MESSAGE = EmailMessage(
    1, "fan@example.test", "from@example.test", "s", "<p>h</p>", "t", "<d1.0@mysetlist>"
)


class ScriptedProvider:
    """A stand-in for a remote provider: up or down as the test says."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.permanent = False
        self.calls = 0

    async def send(self, message: EmailMessage, *, gate: Gate | None = None) -> str:
        self.calls += 1
        if self.permanent:
            raise ProviderError("550 no such user", retryable=False, bounce=True)
        if not self.up:
            raise ProviderError("connection refused", retryable=True)
        return f"{self.name}-{self.calls}"

    async def close(self) -> None:
        pass


async def test_open_after_failures_trial_after_cooldown_close_on_success() -> None:
    now = [0.0]
    first, second = ScriptedProvider("alpha"), ScriptedProvider("beta")
    chain = FailoverEmail([first, second], failures_to_open=2, cooldown=30, clock=lambda: now[0])
    away = metrics.PROVIDER_SWITCHES.labels("alpha", "beta")._value.get()
    back = metrics.PROVIDER_SWITCHES.labels("beta", "alpha")._value.get()

    assert (await chain.send(MESSAGE)).provider == "alpha"
    first.up = False
    assert (await chain.send(MESSAGE)).provider == "beta"  # 1st failure: still tried first
    assert (await chain.send(MESSAGE)).provider == "beta"  # 2nd failure: opens
    assert chain.current == "beta"
    calls = first.calls
    now[0] += 29
    assert (await chain.send(MESSAGE)).provider == "beta"
    assert first.calls == calls  # open: not even tried during the cooldown
    now[0] += 2
    assert (await chain.send(MESSAGE)).provider == "beta"  # the trial failed: open again
    assert first.calls == calls + 1
    first.up = True
    now[0] += 31
    assert (await chain.send(MESSAGE)).provider == "alpha"  # trial succeeded: back
    assert chain.current == "alpha"
    assert metrics.PROVIDER_SWITCHES.labels("alpha", "beta")._value.get() == away + 1
    assert metrics.PROVIDER_SWITCHES.labels("beta", "alpha")._value.get() == back + 1


async def test_a_permanent_error_neither_fails_over_nor_counts_against_the_provider() -> None:
    first, second = ScriptedProvider("gamma"), ScriptedProvider("delta")
    chain = FailoverEmail([first, second], failures_to_open=1, cooldown=30)
    first.permanent = True
    with pytest.raises(ProviderError) as refused:
        await chain.send(MESSAGE)
    assert refused.value.bounce
    assert second.calls == 0
    assert chain.current == "gamma"


async def test_every_provider_down_is_a_retryable_error() -> None:
    first, second = ScriptedProvider("eps"), ScriptedProvider("zeta")
    first.up = second.up = False
    chain = FailoverEmail([first, second], failures_to_open=5, cooldown=30)
    with pytest.raises(ProviderError) as failed:
        await chain.send(MESSAGE)
    assert failed.value.retryable
    assert "eps" in str(failed.value)
    assert "zeta" in str(failed.value)


@pytest.mark.parametrize(
    ("answer", "provider_fault"),
    [("451 4.3.0 local problem", False), ("554 5.6.0 content refused", False),
     ("421 4.3.2 shutting down", True)],
)  # fmt: skip
async def test_a_refusal_at_data_is_the_messages_matter_unless_the_server_closes(
    smtp_sink: SmtpSink, answer: str, provider_fault: bool
) -> None:
    """A real SMTP server refuses one message at DATA. 4xx/5xx there is about that message
    (one recipient a message), so retrying it to maxRetries must not open the breaker and
    pause everyone's mail; 421 is the server closing the channel, which is the provider's."""
    smtp_sink.data_fault["unlucky@example.test"] = answer
    chain = FailoverEmail(
        [SmtpProvider(f"smtp://127.0.0.1:{smtp_sink.port}", connections=1)],
        failures_to_open=2, cooldown=30,
    )  # fmt: skip
    unlucky = dataclasses.replace(MESSAGE, to="unlucky@example.test")
    try:
        for _ in range(3):
            with pytest.raises(ProviderError) as refused:
                await chain.send(unlucky)
        assert refused.value.retryable == answer.startswith("4")
        assert refused.value.recipient is not provider_fault
        assert not refused.value.bounce  # content refused is not a dead address
        if provider_fault:
            assert "paused by its circuit breaker" in str(refused.value)
        else:
            assert f"SMTP {answer[:3]}" in str(refused.value)
            # The same pooled connection still carries the next fan's mail.
            assert (await chain.send(MESSAGE)).provider == "smtp"
            assert [m["To"] for m in smtp_sink.messages] == ["fan@example.test"]
    finally:
        await chain.close()
