"""Prometheus metrics of notification delivery (shown on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter(
    "mysetlist_notify_deliveries_total",
    "Delivery attempts by channel, provider and outcome",
    ["channel", "provider", "outcome"],
)
PROVIDER_SWITCHES = Counter(
    "mysetlist_notify_provider_switches_total",
    "Email provider switches (failover and return), from and to",
    ["from_provider", "to_provider"],
)
PROVIDER_ERRORS = Counter(
    "mysetlist_notify_provider_errors_total",
    "Retryable provider failures (what opens a circuit breaker)",
    ["provider"],
)
