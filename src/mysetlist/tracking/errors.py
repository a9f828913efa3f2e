"""Tracking's refusals, in its own words: services and the wire formats raise these and
know no HTTP; `core.errors` maps each kind to its problem+json status once.

Event refusals always carry `errors` (each offending event's `index`, `field`, `message`;
possibly none), so a client can tell which events of a batch to fix."""

from __future__ import annotations

from typing import Any

from mysetlist.core.errors import (
    DomainError,
    InvalidInput,
    MalformedInput,
    NotAllowed,
    TooLarge,
    Unavailable,
    UnsupportedInput,
)


class _RefusedEvents(DomainError):
    """A refusal of some events, naming each (`errors`, possibly empty): nothing of the
    request is stored. Mixed into the kind that gives the status."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)


class MalformedEvents(_RefusedEvents, MalformedInput):
    """The body or some events cannot be read (JSON, size, shape)."""


class InvalidEvents(_RefusedEvents, InvalidInput):
    """Some events break our endpoint's schema."""


class UserInBody(_RefusedEvents, NotAllowed):
    """Our endpoint takes the user from the token only."""


class TooManyEvents(_RefusedEvents, TooLarge):
    """A batch beyond MYSETLIST_ANALYTICS_BATCH_SIZE events."""


class MalformedBody(MalformedInput):
    """The body's encoding (base64, gzip, deflate) cannot be decoded."""


class BodyTooLarge(TooLarge):
    """The body inflates beyond the body limit."""


class UnsupportedEncoding(UnsupportedInput):
    """A Content-Encoding other than gzip, deflate or identity."""


class RejectedEvents(MalformedInput):
    """The database refused the batch's rows."""


class IngestUnavailable(Unavailable):
    """The writer is saturated or cannot reach the database; the client retries later."""


class UnknownWriteKey(DomainError):
    """No valid write key. Authentication is HTTP's matter: the routes answer it with 401
    and a `WWW-Authenticate` challenge, and count it as the client's failure."""

    title = "Unauthorized"


class MalformedQuery(MalformedInput):
    """A read's parameter cannot be read (a cursor, a user id)."""


class OtherUsersEvents(NotAllowed):
    """Only operators read another user's events."""
