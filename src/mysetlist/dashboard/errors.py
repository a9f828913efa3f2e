"""What the dashboard refuses, in its own words (core/errors.py maps each kind to HTTP)."""

from __future__ import annotations

from mysetlist.core.errors import InvalidInput, NotFound


class InvalidWindow(InvalidInput):
    """A range or time zone the dashboard cannot show; `field` names which."""


class UnknownPanel(NotFound):
    pass
