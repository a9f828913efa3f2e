"""Migration 0003: the ETL's watermark moves from etl_watermarks to the shared
analytics.watermarks without losing how far the ETL got."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from mysetlist.core.db import with_database
from mysetlist.core.migrate import _yoyo_url, apply_migrations, migration_dirs
from mysetlist.warehouse.ranges import WATERMARK

pytestmark = pytest.mark.db

MOVE = "0003_shared_watermarks"


def test_the_etl_watermark_survives_the_move(servers: Any) -> None:
    name = f"mysetlist_wm_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(servers.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(servers.admin_url, name)
    try:
        backend = get_backend(_yoyo_url(url))
        before = read_migrations(*migration_dirs()).filter(lambda m: m.id != MOVE)
        with backend.lock():
            backend.apply_migrations(backend.to_apply(before))
        position = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO analytics.etl_watermarks (pipeline, last_full_day, last_received_at,"
                " run_id) VALUES ('events', '2026-03-03', %s, 42)",
                (position,),
            )
        assert apply_migrations(url) == [MOVE]
        with psycopg.connect(url) as conn:
            moved = conn.execute(
                "SELECT position, last_full_day, run_id FROM analytics.watermarks WHERE name = %s",
                (WATERMARK,),
            ).fetchone()
            gone = conn.execute("SELECT to_regclass('analytics.etl_watermarks')").fetchone()
        assert moved == (position, date(2026, 3, 3), 42)
        assert gone == (None,)
    finally:
        with psycopg.connect(servers.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
