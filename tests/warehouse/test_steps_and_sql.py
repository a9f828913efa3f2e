"""The one list of ETL steps and warehouse tables, and how the .sql files are split."""

from __future__ import annotations

import psycopg
import pytest

from mysetlist.core.db import split_statements
from mysetlist.warehouse import maintenance, quality, steps
from mysetlist.warehouse.sql_files import statements, writes_rows


def test_a_semicolon_ending_a_comment_does_not_end_the_statement() -> None:
    assert split_statements("SELECT 1 -- keep;\nFROM x;") == ["SELECT 1 -- keep;\nFROM x;"]
    assert split_statements("-- only a comment;\n-- and another;\nSELECT 2; SELECT 3;") == [
        "-- only a comment;\n-- and another;\nSELECT 2;",
        "SELECT 3;",
    ]
    assert split_statements("SELECT ';' AS semi; SELECT $$a;b$$;") == [
        "SELECT ';' AS semi;",
        "SELECT $$a;b$$;",
    ]


@pytest.mark.db
def test_split_statements_run_as_written(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for stmt in split_statements("SELECT 1 AS one -- keep;\nWHERE true;\nSELECT 2;"):
            conn.execute(stmt)
        (got,) = split_statements("SELECT 1 AS one -- keep;\nWHERE true;")
        assert conn.execute(got).fetchone() == (1,)


def test_every_step_file_splits_and_counts_only_its_writes() -> None:
    with_sql = [*steps.DAY_STEPS, *steps.ROLLUP_STEPS, "platform_windows_latest"]
    for step in with_sql:
        parts = statements(step)
        assert parts, step
        if step != "extract":
            assert any(writes_rows(p) for p in parts), step
    assert not any(writes_rows(p) for p in statements("extract"))  # temp tables only
    assert not writes_rows("DELETE FROM analytics.daily_user_stats WHERE day = %(day)s")
    assert writes_rows("WITH x AS (SELECT 1) UPDATE analytics.t SET a = 1")


def test_the_table_lists_are_one_list() -> None:
    assert set(quality.EXPECTED_COLUMNS) == set(steps.TABLES)
    assert maintenance.DAILY_PLATFORM_METRICS.name not in maintenance.DAY_TABLES
    written = {t for tables in steps.STEP_TABLES.values() for t in tables}
    assert written == set(steps.TABLES) | set(steps.MATERIALIZED_VIEWS) | set(steps.SCORE_TABLES)
    for mode in steps.MODES:
        assert steps.normalise_steps(None, mode) == list(steps.DEFAULT_STEPS[mode])


def test_a_folded_step_is_refused_with_the_step_that_does_its_work() -> None:
    with pytest.raises(ValueError, match="now part of step 'daily_user_stats'"):
        steps.normalise_steps(["user_engagement_warehouse"], "range")
    with pytest.raises(ValueError, match=r"unknown step\(s\) \['nope'\]"):
        steps.normalise_steps(["daily_user_stats", "nope"], "range")
    assert "user_engagement_warehouse" in steps.STEP_TABLES["daily_user_stats"]


def test_all_steps_lists_each_step_after_what_it_reads() -> None:
    for reads in (steps.READS, steps.READS_INCREMENTAL):
        for step, read in reads.items():
            assert all(steps.ALL_STEPS.index(r) < steps.ALL_STEPS.index(step) for r in read)


def test_waves_run_a_step_after_what_it_reads_and_barriers_alone() -> None:
    later = [s for s in steps.ALL_STEPS if s not in steps.DAY_STEPS]
    assert steps.waves(later, incremental=False) == [
        ["setlist_prediction_scores", "trending", "platform_windows"],
        ["voting_patterns_warehouse", "refresh_views"],
        ["user_behavior_warehouse"],
        ["quality_checks"],
        ["analyze"],
        ["maintenance"],
    ]
    incremental = [s for s in steps.DEFAULT_STEPS["incremental"] if s not in steps.DAY_STEPS]
    assert steps.waves(incremental, incremental=True) == [
        ["voting_patterns_warehouse", "trending"],
        ["user_behavior_warehouse"],
        ["platform_windows"],
        ["quality_checks"],
    ]
    # A step whose input is not in the run does not wait for it.
    assert steps.waves(["user_behavior_warehouse", "trending"], incremental=True) == [
        ["user_behavior_warehouse", "trending"]
    ]


@pytest.mark.db
def test_the_listed_tables_are_the_warehouse(database_url: str) -> None:
    """Every listed table exists, and every analytics table with a day or user grain that
    the warehouse migration created is listed (a new table must join the list)."""
    with psycopg.connect(database_url) as conn:
        relations = {
            r[0]
            for r in conn.execute(
                """SELECT c.relname FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'm')
                      AND NOT c.relispartition"""
            )
        }
    listed = {
        *steps.TABLES,
        *steps.MATERIALIZED_VIEWS,
        *steps.SCORE_TABLES,
        steps.LOADED_DAYS_TABLE,
    }
    assert listed <= relations
    warehouse_like = {r for r in relations if r.endswith("_warehouse")}
    assert warehouse_like <= set(steps.TABLES)
