"""The notify capability's HTTP contract, shared part: the closed sets of values as enums,
so `/openapi.json` (and the TypeScript types generated from it) knows every field.

Each part keeps its own models beside its routes, in `<part>/api_models.py`: a Read model
for each resource a route answers with, Create/Update models for what it takes (as Netflix
Dispatch names them). The send request itself is `delivery/sending.SendRequest`, the push
subscription bodies are in `push/routes.py`, the template bodies in `templates/routes.py`:
each beside the code that reads it.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    email = "email"
    push = "push"
    in_app = "in_app"


# A category read back from storage is text (the column has no check; everything we write
# is one of `Category`): an unknown one is shown as it is rather than failing the read.
STORED_CATEGORY = "one of Category's values for everything this service wrote"


class Category(StrEnum):
    security = "security"
    account = "account"
    show_reminders = "show_reminders"
    new_shows = "new_shows"
    artist_updates = "artist_updates"
    vote_results = "vote_results"
    digests = "digests"
    marketing = "marketing"


class DigestFrequency(StrEnum):
    immediate = "immediate"
    daily = "daily"
    weekly = "weekly"


class DeliveryStatus(StrEnum):
    """A delivery's status (notify.notification_delivery.status)."""

    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    deferred = "deferred"
    bounced = "bounced"
    dropped = "dropped"
    complained = "complained"
    opened = "opened"
    clicked = "clicked"
    unsubscribed = "unsubscribed"
    failed = "failed"


class SendRequestState(StrEnum):
    in_flight = "in_flight"
    done = "done"
