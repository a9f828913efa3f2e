"""World sizes and knobs (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mysetlist.demo.catalog import IdBases
from mysetlist.demo.generation import generate_world
from mysetlist.demo.spec import WorldSpec


def test_defaults_match_the_brief_and_scale_down_for_few_users() -> None:
    spec = WorldSpec()
    assert (spec.users, spec.artist_count, spec.show_count, spec.genres) == (5000, 500, 3000, 20)
    assert (spec.days, spec.future_days) == (120, 60)
    small = WorldSpec(users=200)
    assert small.artist_count == 40  # two per genre at least
    assert small.show_count == 240
    assert WorldSpec(users=200, artists=7, shows=11).show_count == 11  # explicit wins


@pytest.mark.parametrize(
    "bad",
    [{"users": 0}, {"days": 0}, {"genres": 99}, {"churn_share": 1.5}, {"seed": -1},
     {"artists": 0}, {"mean_sessions_per_day": 0}],
)  # fmt: skip
def test_nonsense_specs_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        WorldSpec(**bad)  # type: ignore[arg-type]


def test_generation_is_deterministic_in_memory() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    spec = WorldSpec(users=300, days=10, seed=8)

    def events(seed_spec: WorldSpec) -> list[np.ndarray]:
        world = generate_world(seed_spec, now - timedelta(days=10), now, IdBases())
        return [b.event_at for _, b in world.activity_chunks()]

    first, again = events(spec), events(spec)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = events(WorldSpec(users=300, days=10, seed=9))
    assert not np.array_equal(first[0], other[0])
