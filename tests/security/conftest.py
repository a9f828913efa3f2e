"""Fixtures of the attack suite."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from mysetlist.tracking import write_keys


@pytest.fixture(scope="module")
def browser_key(database_url: str) -> Iterator[str]:
    """A public (browser) write key, as a web page embeds it: anyone may use it."""
    with psycopg.connect(database_url) as conn:
        key_id, key = write_keys.create_key(conn, "web (attack suite)", "browser")
    yield key
    with psycopg.connect(database_url) as conn:
        write_keys.revoke_key(conn, str(key_id))
