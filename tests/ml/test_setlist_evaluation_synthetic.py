"""`mysetlist ml evaluate-setlists --synthetic` on a demo world of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson
import pytest

from mysetlist.demo.world import WorldSpec
from tests.conftest import migrated_database
from tests.ml.user_model_world import build

pytestmark = pytest.mark.db


def test_synthetic_evaluation_puts_the_model_above_every_baseline(
    servers: Any, redis_url: str
) -> None:
    with migrated_database(servers.admin_url, "mysetlist_setlist_eval") as url:
        build(url, WorldSpec(users=400, events=False, seed=5))
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url}
        done = subprocess.run(
            [sys.executable, "-c", "from mysetlist.cli import main; main()",
             "ml", "evaluate-setlists", "--synthetic", "--json"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    overall = report["overall"]
    assert set(overall) == {
        "last_show", "recent_frequency", "decayed_frequency", "tour_frequency", "model"
    }  # fmt: skip
    low, high = report["intervals"]["model_minus_best_baseline"]
    assert 0 < low <= high, report["intervals"]
    for name in ("last_show", "recent_frequency", "decayed_frequency", "tour_frequency"):
        assert report["intervals"][f"model_minus_{name}"][0] > 0, name
