"""The notify contract's enums are the catalog's own values (every route's schema is checked
for all capabilities at once: tests/core/test_openapi_contract.py for 2xx bodies,
tests/privacy/test_openapi_fuzz.py for problem+json errors and conformance)."""

from __future__ import annotations

from mysetlist.notify.api_models import Category, Channel, DigestFrequency
from mysetlist.notify.catalog import CATEGORIES, CHANNELS, DIGEST_FREQUENCIES


def test_the_contract_enums_are_the_catalog() -> None:
    assert tuple(Category) == CATEGORIES
    assert tuple(Channel) == CHANNELS
    assert tuple(DigestFrequency) == DIGEST_FREQUENCIES
