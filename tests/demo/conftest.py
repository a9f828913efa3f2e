"""A world of its own: the demo tests build into fresh databases on the session's server,
so replacing the world never touches other tests' rows (and theirs never skew ours)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo.world import WorldSpec, WorldSummary, build_world
from tests.conftest import Servers, migrated_database

# A fixed present, so a seed gives the same world on every run.
WORLD_NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
SMALL_WORLD = WorldSpec(users=200, days=14, seed=11)
TEST_CIPHER = FieldCipher(b"d" * 32)


@dataclass(frozen=True)
class BuiltWorld:
    url: str
    spec: WorldSpec
    summary: WorldSummary


@pytest.fixture(scope="session")
def fresh_database(servers: Servers) -> Iterator[Callable[[], str]]:
    """Makes migrated, empty databases on the test server; drops them at the end."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(migrated_database(servers.admin_url, "mysetlist_demo"))


@pytest.fixture(scope="session")
def scratch_url(fresh_database: Callable[[], str]) -> str:
    """One database for the tests that build worlds of their own (each replaces the last;
    a test that adds rows of its own removes them again)."""
    return fresh_database()


@pytest.fixture(scope="session")
def small_world(fresh_database: Callable[[], str]) -> BuiltWorld:
    """200 users, 14 days; read-only for the tests that use it."""
    url = fresh_database()
    summary = build_world(url, SMALL_WORLD, now=WORLD_NOW, cipher=TEST_CIPHER)
    return BuiltWorld(url, SMALL_WORLD, summary)
