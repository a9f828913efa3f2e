"""Anonymous and session ids issued by the server, signed, so holding one proves possession.

An id a client makes up (`anon_1`, a posthog-js uuid) can be guessed or copied, so it never
links a visitor's history to a user. `POST /api/analytics/anonymous-id` issues a token:

    <id>.<issued at>.<signature>      e.g. anon_3q2-7w….AGcQxw.9Xk…

`<id>` (`anon_` or `sess_` and 128 random bits, base64url) is the visitor's stable id: it
is what events and identity links store. The whole token is the credential: an HMAC-SHA256
signature (itsdangerous) over the id and its issue time, valid for
`MYSETLIST_SIGNED_ID_TTL_DAYS` (30 by default). Posting a token that is still valid to the
same route renews it: the same id, signed anew. Because only the id is ever stored, no
credential can be read back from events, exports or the dashboard; and an expired token
proves nothing (its events are stored under the id but join nobody's history).

Erasure revokes the ids linked to the erased user (`analytics.revoked_signed_ids`, by
SHA-256 of the id): a revoked id never links again, is never renewed, and an event carrying
it is refused (ingest keeps the revocations in memory: revocations.py).

Verification is an HMAC per token; the result (id and issue time, or "not ours") is cached
per token, so the ingest hot path pays it once per visitor, never a database round trip.
The key is derived from the field-encryption key (rotating that key retires the tokens
issued before, not their links).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import Literal, NamedTuple

from itsdangerous import BadSignature, Signer

IdKind = Literal["anonymous", "session"]

# Readable prefixes; the salt (one per kind) is what keeps a session id from passing as an
# anonymous id and the reverse. "v2": tokens with an issue time (the first version had none
# and so never expired; those no longer verify).
PREFIX: dict[IdKind, str] = {"anonymous": "anon_", "session": "sess_"}
DEFAULT_TTL_SECONDS = 30 * 24 * 3600
# The stored form of a server-issued id: the prefix and 22 base64url characters.
_ID_SHAPE = {kind: re.compile(rf"^{p}[A-Za-z0-9_-]{{22}}$") for kind, p in PREFIX.items()}
ID_SHAPE_SQL = "^(anon|sess)_[A-Za-z0-9_-]{22}$"  # the same, for SQL (revocation)


class VerifiedId(NamedTuple):
    """A token this server signed: the stable id it carries and when it stops proving."""

    id: str
    expires_at: float  # epoch seconds

    def valid(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(8, "big").lstrip(b"\0") or b"\0").decode()


def revocation_digest(stable_id: str) -> bytes:
    """How a revoked id is kept (`analytics.revoked_signed_ids.id_sha256`): not the id."""
    return hashlib.sha256(stable_id.encode()).digest()


class SignedIds:
    def __init__(
        self,
        secret: bytes,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        cache_size: int = 65536,
        revoked: Callable[[], frozenset[bytes]] = frozenset,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._revoked = revoked  # the revoked ids' digests (revocations.py), read per check
        self._signers: dict[IdKind, Signer] = {
            kind: Signer(
                secret,
                salt=f"mysetlist.tracking.{kind}-id.v2",
                key_derivation="hmac",
                digest_method=hashlib.sha256,
            )
            for kind in PREFIX
        }
        # Per token: (id, issued at) or None. Pure in the token, so safe to cache; expiry is
        # checked against the clock on every call.
        self._unsign = functools.lru_cache(maxsize=cache_size)(self._unsign_uncached)

    def issue(self, kind: IdKind, *, stable_id: str | None = None, now: float | None = None) -> str:
        """A token for a new id, or for `stable_id` (renewal), issued at `now`."""
        value = stable_id or PREFIX[kind] + secrets.token_urlsafe(16)
        issued = int(time.time() if now is None else now)
        return self._signers[kind].sign(f"{value}.{_b64(issued)}").decode()

    def _unsign_uncached(self, kind: IdKind, token: str) -> tuple[str, int] | None:
        if not token.startswith(PREFIX[kind]) or token.count(".") != 2:
            return None
        try:
            payload = self._signers[kind].unsign(token).decode()
            value, _, issued = payload.partition(".")
            issued_at = int.from_bytes(base64.urlsafe_b64decode(issued), "big")
        except (BadSignature, ValueError):
            return None
        if not _ID_SHAPE[kind].match(value):
            return None
        return value, issued_at

    def verify(self, kind: IdKind, token: str | None) -> VerifiedId | None:
        """The id inside `token` when this server signed it (expired or not), else None."""
        # Ids that cannot be our tokens are answered before the cache (an unsigned id per
        # event would otherwise cost a cache lookup and evict real tokens).
        if not token or not token.startswith(PREFIX[kind]) or token.count(".") != 2:
            return None
        found = self._unsign(kind, token)
        if found is None:
            return None
        return VerifiedId(found[0], found[1] + self.ttl_seconds)

    def is_signed(self, kind: IdKind, token: str | None, *, now: float | None = None) -> bool:
        """Whether `token` is an id of this kind that this server issued and that has not
        expired (revocation is the database's part: see link_identities.sql)."""
        verified = self.verify(kind, token)
        return verified is not None and verified.valid(now)

    def is_revoked(self, stable_id: str) -> bool:
        """Whether erasure revoked this id (as far as this process knows: see revocations.py;
        linking checks the table itself)."""
        digests = self._revoked()
        return bool(digests) and revocation_digest(stable_id) in digests

    @staticmethod
    def looks_issued(kind: IdKind, value: str | None) -> bool:
        """Whether `value` has the form of a stored server-issued id (without its token): a
        client never has one (it only ever receives tokens), so it is refused as input."""
        return (
            value is not None
            and value.startswith(PREFIX[kind])
            and _ID_SHAPE[kind].match(value) is not None
        )
