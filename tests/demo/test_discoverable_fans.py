"""The demo world has fans who chose to be found by other fans, and fans who did not: similar
fans and the setlist leaderboard show something in the demo, and not everyone."""

from __future__ import annotations

import psycopg

from tests.demo.conftest import BuiltWorld


def test_a_part_of_the_demo_fans_are_discoverable(small_world: BuiltWorld) -> None:
    with psycopg.connect(small_world.url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE u.discoverable), count(*)"
            " FROM app.users u JOIN demo_truth.user_profile p ON p.user_id = u.id"
        ).fetchone()
    assert row is not None
    discoverable, fans = row
    assert fans == small_world.spec.users
    assert 0.2 * fans <= discoverable <= 0.5 * fans
