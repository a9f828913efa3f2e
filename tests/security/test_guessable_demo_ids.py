"""Issue 15 item 1: the demo's visitor ids were sequential (`anon_<n>`, `sess_<n>`), so any
fan could name another fan's anonymous history. They are now as unguessable as production
ids (prefix + 128 bits, base64url), derived from the deployment's key: the same key and seed
still give the same world, another key gives other ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
import pytest

from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo.world import WorldSpec, build_world
from tests.conftest import Servers, migrated_database

pytestmark = pytest.mark.db
SHAPE = {"anonymous_id": re.compile(r"^anon_[A-Za-z0-9_-]{22}$"),
         "session_id": re.compile(r"^sess_[A-Za-z0-9_-]{22}$")}  # fmt: skip
NOW = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
SPEC = WorldSpec(users=12, days=2, seed=5)


def _ids(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT user_id::text, anonymous_id, session_id FROM analytics.user_events"
            " ORDER BY 1, 2, 3"
        ).fetchall()
    return [(str(u), str(a), str(s)) for u, a, s in rows]


def test_demo_visitor_ids_are_random_like_production_ones(servers: Servers) -> None:
    key, other_key = FieldCipher(b"a" * 32), FieldCipher(b"b" * 32)
    with migrated_database(servers.admin_url, "mysetlist_sec_demo") as url:
        build_world(url, SPEC, now=NOW, cipher=key)
        first = _ids(url)
        build_world(url, SPEC, now=NOW, cipher=other_key)
        rekeyed = _ids(url)
        build_world(url, SPEC, now=NOW, cipher=key)
        again = _ids(url)
    assert first
    for _, anonymous, session in first:
        assert SHAPE["anonymous_id"].match(anonymous), anonymous
        assert SHAPE["session_id"].match(session), session
    per_user = {u: a for u, a, _ in first}
    assert len(set(per_user.values())) == len(per_user)  # one visitor id per fan, all distinct
    assert again == first  # same key and seed: the same world
    assert {a for _, a, _ in rekeyed}.isdisjoint({a for _, a, _ in first})
    assert {s for _, _, s in rekeyed}.isdisjoint({s for _, _, s in first})
