"""Who an event belongs to, and which ids it may link to a user: the one identity rule of
every wire format (`wire/`).

- Our endpoint: `user_id` comes from the JWT only; a `user_id` in the body is refused. The
  event's `anonymous_id` / `session_id` link to that user only when they are valid tokens
  the server signed (`signed_ids.py`): holding one proves possession. A token is stored as
  the stable id it carries (never the token itself). Any other id stays on the event as an
  attribute and links nothing. An anonymous event gets a linked user at insert only when it
  proves its id the same way (a valid token, or a server key). A bare stable id (a token
  without its signature) and a revoked token are refused, on every endpoint.
- A `server` write key is trusted: its platform user ids (uuids) are the event's user, and
  the ids on its events link to that user (Segment identify/alias, PostHog $identify and
  $create_alias, and any event carrying both, as the SDKs send them).
- A `browser` write key is public: a platform user id it sends is only a claim, kept in
  the `claimed_user_id` column of an anonymous event, and its identify/alias calls link
  nothing. A signed anonymous id proves who holds the id, not who the claimed user is: a
  visitor could otherwise pour their own history into anyone's. A browser links through
  our endpoint, whose JWT proves the user.

Which field of a Segment or PostHog event names the user, the anonymous id or an alias is
each format's matter (`wire/segment.py`, `wire/posthog.py`); what those ids then prove is
decided here, once (`ecosystem_identity`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, NamedTuple

from mysetlist.tracking.events import EventRow, IdentityLink, dedup_sender
from mysetlist.tracking.signed_ids import PREFIX, IdKind, SignedIds

KeyTrust = Literal["browser", "server"]


class ResolvedId(NamedTuple):
    """An event's anonymous or session id as stored, and whether the event proved it."""

    value: str | None
    proven: bool


_NO_ID = ResolvedId(None, False)


def resolve_id(
    kind: IdKind, raw: str | None, *, signed: SignedIds, trusted: bool, now: float
) -> ResolvedId:
    """A server-signed token is stored as the stable id it carries, proven while valid; any
    other id is stored as sent, proven only when the sender is trusted (a server key).
    Raises ValueError for a revoked token, and for a bare stable id (its token left off): a
    client only ever holds tokens, and accepting the bare id would let a copy of it pass as
    the real visitor."""
    if raw is None:
        return _NO_ID
    if not raw.startswith(PREFIX[kind]):
        # Neither a token nor a bare issued id (both carry the prefix): the common case of
        # a client's own ids, answered without the verification and shape checks. Built
        # with tuple.__new__: a NamedTuple's own __new__ is a Python call, per event.
        return tuple.__new__(ResolvedId, (raw, trusted))
    verified = signed.verify(kind, raw)
    if verified is not None:
        if signed.is_revoked(verified.id):
            raise ValueError(
                "this id was revoked (its user's data was erased): request a new one from"
                " POST /api/analytics/anonymous-id"
            )
        return ResolvedId(verified.id, trusted or verified.valid(now))
    if not trusted and signed.looks_issued(kind, raw):
        raise ValueError("a server-issued id must be sent as the token it was issued as")
    return ResolvedId(raw, trusted)


def proven_links(
    user: uuid.UUID | None, anonymous: ResolvedId, session: ResolvedId
) -> list[IdentityLink]:
    """Links from `user` to the event's proven ids (a valid signed token, or any id from a
    sender trusted to merge identities)."""
    if user is None:
        return []
    ids: tuple[tuple[IdKind, ResolvedId], ...] = (("anonymous", anonymous), ("session", session))
    return [
        IdentityLink(kind, rid.value, user)
        for kind, rid in ids
        if rid.value is not None and rid.proven
    ]


# -- Segment and PostHog -----------------------------------------------------------------------


def _ecosystem_ids(
    anonymous: str | None, session: str | None, *, signed: SignedIds, trust: KeyTrust, now: float
) -> tuple[ResolvedId, ResolvedId]:
    trusted = trust == "server"
    return (
        resolve_id("anonymous", anonymous, signed=signed, trusted=trusted, now=now),
        resolve_id("session", session, signed=signed, trusted=trusted, now=now),
    )


def _claim_or_user(
    user: uuid.UUID | None, ids: tuple[ResolvedId, ResolvedId], *, trust: KeyTrust
) -> tuple[uuid.UUID | None, uuid.UUID | None, str | None]:
    """(user, claimed user, stored anonymous id). A browser key's user id is anyone's to
    write: a claim (`claimed_user_id`) on an anonymous event, which links nothing (not even
    a signed id: that proves the visitor, not the user). Without an anonymous id the claim's
    uuid stands in as the event's anonymous id, as the SDKs' own fallback does."""
    if trust == "server" or user is None:
        return user, None, ids[0].value
    return None, user, ids[0].value or str(user)


def _ecosystem_sender(
    key_scope: bytes,
    trust: KeyTrust,
    user: uuid.UUID | None,
    claimed: uuid.UUID | None,
    anonymous: str | None,
    session: ResolvedId,
) -> bytes:
    """A server key is one sender; a browser key is public, so each of its visitors is a
    sender of its own (the user it names, else its anonymous or session id: what a retry
    repeats)."""
    if trust == "server":
        return dedup_sender("key", key_scope)
    return dedup_sender("key", key_scope, str(user or claimed or anonymous or session.value))


class EcosystemIdentity(NamedTuple):
    """Who a Segment or PostHog event is from, by the one identity rule of both formats."""

    user: uuid.UUID | None
    claimed: uuid.UUID | None
    anonymous: str | None  # as stored
    session: str | None
    sender: bytes
    proves_anonymous: bool
    proves_session: bool
    links: list[IdentityLink]

    def row(
        self,
        message_id: str,
        event_type: str,
        page_url: object,
        properties: str,
        source: str,
        created_at: datetime,
    ) -> EventRow:
        """The event as stored, with these ids (`properties`: JSON text)."""
        return EventRow(
            message_id, self.user, self.anonymous, self.session, event_type,
            str(page_url) if page_url is not None else None, properties, source, created_at,
            self.claimed, self.sender, self.proves_anonymous, self.proves_session,
        )  # fmt: skip


def ecosystem_identity(
    user: uuid.UUID | None,
    anonymous: str | None,
    raw_session: object,
    *,
    key_scope: bytes,
    signed: SignedIds,
    trust: KeyTrust,
    now: float,
) -> EcosystemIdentity:
    """The ids resolved (ValueError for a revoked token or a bare issued id), a browser
    key's user turned into a claim, the dedup sender, and the links a server key proves."""
    ids = _ecosystem_ids(
        anonymous, str(raw_session) if raw_session is not None else None,
        signed=signed, trust=trust, now=now,
    )  # fmt: skip
    user, claimed, stored = _claim_or_user(user, ids, trust=trust)
    return EcosystemIdentity(
        user, claimed, stored, ids[1].value,
        _ecosystem_sender(key_scope, trust, user, claimed, stored, ids[1]),
        ids[0].proven, ids[1].proven,
        proven_links(user, *ids) if trust == "server" else [],
    )  # fmt: skip
