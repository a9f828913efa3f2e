"""The privacy capability's refusals, in its own words (kinds from core/errors.py, which
maps each kind to its problem+json status once)."""

from __future__ import annotations

from mysetlist.core.errors import NotFound, RateLimited


class ExportRateLimited(RateLimited):
    """The caller has used up their exports (MYSETLIST_PRIVACY_EXPORT_RATE_LIMIT)."""


class UnknownErasureRequest(NotFound):
    """No erasure request has this id."""
