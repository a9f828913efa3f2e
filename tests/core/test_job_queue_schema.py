"""procrastinate's schema: installed once, recorded, and a start with a procrastinate whose
schema migrations were not applied fails loudly, naming them."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import psycopg
import pytest

from mysetlist.core.migrate import (
    JobQueueSchemaOutdated,
    apply_migrations,
    shipped_job_queue_migrations,
)
from tests.conftest import migrated_database

pytestmark = pytest.mark.db


def _recorded(url: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT procrastinate_version, last_migration FROM public.job_queue_schema"
        ).fetchone()


def test_install_records_the_schema_and_an_outdated_schema_refuses_to_start(
    servers: Any,
) -> None:
    shipped = shipped_job_queue_migrations()
    version = importlib.metadata.version("procrastinate")
    with migrated_database(servers.admin_url, "mysetlist_jq") as url:
        assert _recorded(url) == (version, shipped[-1])
        assert apply_migrations(url) == []  # up to date: a second start passes
        # As if the tables had been installed by an older procrastinate, two migrations ago.
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE public.job_queue_schema SET procrastinate_version = '3.0.0',"
                " last_migration = %s",
                (shipped[-3],),
            )
        with pytest.raises(JobQueueSchemaOutdated) as refused:
            apply_migrations(url)
        message = str(refused.value)
        assert shipped[-2] in message
        assert shipped[-1] in message
        assert shipped[-3] + "," not in message  # already applied, not asked for again
        assert "procrastinate schema --migrations-path" in message
        # Once the operator applied them and recorded it, the start goes on.
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE public.job_queue_schema SET last_migration = %s", (shipped[-1],))
        apply_migrations(url)
        assert _recorded(url) == (version, shipped[-1])


def test_a_database_newer_than_the_installed_procrastinate_refuses_to_start(
    servers: Any,
) -> None:
    with migrated_database(servers.admin_url, "mysetlist_jq") as url:
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE public.job_queue_schema SET procrastinate_version = '9.0.0',"
                " last_migration = '99.00.00_01_future.sql'"
            )
        with pytest.raises(JobQueueSchemaOutdated, match=r"install procrastinate==9\.0\.0"):
            apply_migrations(url)
