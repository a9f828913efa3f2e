"""The names of notify's tasks and their queue, each written once: `jobs.py` registers the
tasks under them, and sends and digests defer DELIVER in their own transactions."""

from __future__ import annotations

QUEUE = "notify"
DELIVER = "notify.deliver"
DELIVER_DUE = "notify.deliver_due"
SEND_DIGESTS = "notify.send_digests"
DAILY_ANALYTICS = "notify.daily_analytics"
FEED_EVENTS = "notify.feed_events"
