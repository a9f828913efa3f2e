"""Security event counters in /metrics, shared by every capability: failed
authentications, refusals, rate-limit hits (counted for every response by
privacy/monitoring.py) and failures a capability sees without a response status of its own,
e.g. a webhook whose signature does not verify:

    count_security_event("webhook_signature", "sendgrid")
"""

from __future__ import annotations

from prometheus_client import Counter

SECURITY_EVENTS = Counter(
    "mysetlist_security_events",
    "Failed authentications, refusals, rate-limit hits and signature failures, by kind and source",
    ["kind", "source"],
)


def count_security_event(kind: str, source: str) -> None:
    SECURITY_EVENTS.labels(kind, source[:32]).inc()
