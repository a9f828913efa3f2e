"""What the Segment and PostHog formats share: a batch read event by event under the one
identity rule (`identity_rule.ecosystem_identity`), and stored whole or not at all (a 400
naming each invalid event)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from mysetlist.tracking.errors import MalformedEvents
from mysetlist.tracking.events import EventRow, IdentityLink, Ingest
from mysetlist.tracking.identity_rule import EcosystemIdentity, KeyTrust, ecosystem_identity
from mysetlist.tracking.signed_ids import SignedIds
from mysetlist.tracking.wire.validation import properties_json, unproven_id_error


class EcosystemBatch:
    """The rows, links and refusals of one Segment or PostHog request, sent with a write
    key of this `trust` (`key_scope` names the key: dedup_sender)."""

    def __init__(
        self,
        source: str,
        *,
        received_at: datetime,
        trust: KeyTrust,
        signed: SignedIds,
        key_scope: bytes,
    ) -> None:
        self.source = source
        self.trust = trust
        self.signed = signed
        self.key_scope = key_scope
        self.now = received_at.timestamp()
        self.rows: list[EventRow] = []
        self.links: list[IdentityLink] = []
        self.errors: list[dict[str, Any]] = []

    def refuse(self, index: int, field: str, message: str) -> None:
        self.errors.append({"index": index, "field": field, "message": message})

    def identify(
        self,
        index: int,
        id_field: str,
        user: uuid.UUID | None,
        anonymous: str | None,
        raw_session: object,
    ) -> EcosystemIdentity | None:
        """Who the event is from, its proven links kept; None (the event refused, naming
        `id_field`) for a revoked token or a bare issued id."""
        try:
            who = ecosystem_identity(
                user, anonymous, raw_session,
                key_scope=self.key_scope, signed=self.signed, trust=self.trust, now=self.now,
            )  # fmt: skip
        except ValueError as exc:
            self.errors.append(unproven_id_error(index, id_field, exc))
            return None
        self.links += who.links
        return who

    def add(
        self,
        who: EcosystemIdentity,
        message_id: str,
        event_type: str,
        page_url: object,
        properties: dict[str, Any],
        created_at: datetime,
    ) -> None:
        self.rows.append(
            who.row(
                message_id, event_type, page_url, properties_json(properties), self.source,
                created_at,
            )
        )  # fmt: skip

    def ingest(self) -> Ingest:
        """The rows and links, or MalformedEvents naming every refused event."""
        if self.errors:
            raise MalformedEvents("some events are invalid; none were stored", self.errors)
        return Ingest(self.rows, self.links)
