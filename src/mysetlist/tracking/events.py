"""The one stored shape of an event, whatever wire format it came in on (`wire/`): an
`EventRow` (the column order of the group-commit COPY), the identity links a request
proves, and the dedup scope of its sender.

Dedup: a message id is unique per sender (`dedup_sender`): the token's user, a server write
key, or an anonymous visitor (its ids; for a public browser key, key and ids), so a message
id one sender used first never hides another sender's event.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import datetime
from typing import NamedTuple

from mysetlist.tracking.signed_ids import IdKind


class EventRow(NamedTuple):
    """One event as staged for COPY (this order is the staging table's column order). The
    last three fields are staged but not stored: who the message id is unique for, and
    whether the event proved its ids (then a linked id gives it the linked user)."""

    message_id: str
    user_id: uuid.UUID | None
    anonymous_id: str | None
    session_id: str | None
    event_type: str
    page_url: str | None
    properties: str  # JSON text
    source: str
    created_at: datetime
    claimed_user_id: uuid.UUID | None = None  # a browser key's unproven user id
    sender: bytes = b""  # dedup scope: message ids are unique per sender (dedup_sender)
    proves_anonymous: bool = False
    proves_session: bool = False


@functools.lru_cache(maxsize=65536)
def dedup_sender(*parts: str | bytes | None) -> bytes:
    """The dedup scope of an event: a short hash of who sent it (a user, a write key, an
    anonymous visitor), so one sender's message id never hides another sender's event.
    Hashed: the scope table must not hold user ids or anonymous ids in clear. Cached: a
    sender sends many events (the hash per event was ~2.5 % of an ingest worker)."""
    h = hashlib.blake2b(digest_size=16, person=b"mysetlist-dedup")
    for part in parts:
        h.update(part if isinstance(part, bytes) else (part or "").encode())
        h.update(b"\x1f")
    return h.digest()


class IdentityLink(NamedTuple):
    """An anonymous or session id proven to belong to `user_id`: the writer records it (the
    first link wins) and gives the id's earlier anonymous events to the user."""

    kind: IdKind
    id: str
    user_id: uuid.UUID


class Ingest(NamedTuple):
    """A request's events and the identity links they prove."""

    rows: list[EventRow]
    links: list[IdentityLink]
