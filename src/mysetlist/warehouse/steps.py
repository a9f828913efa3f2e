"""The ETL's steps and the warehouse tables they write: the one list every other module
(pipeline, quality checks, maintenance, rebuild, tests, bench) reads.

A run takes steps in three stages:

- day steps (`extract` and the day-grained tables), one transaction per day;
- rollup steps (entity-level tables and the windows over days), after the days;
- post steps (views, quality checks, ANALYZE, maintenance), last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from psycopg import sql

# How a run picks its days (warehouse/ranges.py); the API contract shows the same values.
RunMode = Literal["daily", "range", "incremental"]
MODES: tuple[RunMode, ...] = get_args(RunMode)

DAY_STEPS = (
    "extract",
    "daily_user_stats",  # also writes user_engagement_warehouse (one statement)
    "artist_popularity_warehouse",
    "show_engagement_warehouse",
    "daily_platform_metrics",
)
ROLLUP_STEPS = (
    "setlist_prediction_scores",
    "voting_patterns_warehouse",
    "user_behavior_warehouse",
    "trending",
    "platform_windows",
)
POST_STEPS = ("refresh_views", "quality_checks", "analyze", "maintenance")
ALL_STEPS = DAY_STEPS + ROLLUP_STEPS + POST_STEPS
# Steps that no longer exist on their own, and the step that now does their work: a
# request naming one is refused (422) with this pointer rather than "unknown".
FOLDED_STEPS = {"user_engagement_warehouse": "daily_user_stats"}

# The spec's phase of each step.
PHASES = {
    "extract": "extract",
    **{s: "transform_load" for s in DAY_STEPS[1:] + ROLLUP_STEPS},
    **{s: "post_processing" for s in POST_STEPS},
}
DEFAULT_STEPS: dict[str, tuple[str, ...]] = {
    "daily": ALL_STEPS,
    "range": tuple(s for s in ALL_STEPS if s != "maintenance"),
    # The materialized views are refreshed by the daily run, not every few minutes, and
    # played setlists are scored then too. Autovacuum's ANALYZE keeps up with a few
    # minutes of changes.
    "incremental": tuple(
        s
        for s in ALL_STEPS
        if s not in ("refresh_views", "analyze", "maintenance", "setlist_prediction_scores")
    ),
}

# Warehouse tables (schema `analytics`). Day-grained ones have a `day` column and are
# reloaded day by day; daily_platform_metrics is partitioned by month.
DAY_GRAINED_TABLES = (
    "daily_user_stats",
    "user_engagement_warehouse",
    "artist_popularity_warehouse",
    "show_engagement_warehouse",
    "daily_platform_metrics",
)
PARTITIONED_TABLE = "daily_platform_metrics"
ENTITY_TABLES = ("user_behavior_warehouse", "voting_patterns_warehouse")
# Scores of the setlist predictions (the ml capability stores them; the ETL scores them
# once the setlist is played); recomputed in full by the step of the same name.
SCORE_TABLES = ("setlist_prediction_scores", "setlist_fan_scores")
TABLES = DAY_GRAINED_TABLES + ENTITY_TABLES
MATERIALIZED_VIEWS = ("cohort_retention_weekly", "genre_trends_daily")
# The ETL's record of what it loaded (cleared with the tables on a rebuild).
LOADED_DAYS_TABLE = "etl_loaded_days"

# The tables each step writes (ANALYZE targets).
STEP_TABLES: dict[str, tuple[str, ...]] = {
    **{t: (t,) for t in DAY_STEPS[1:]},
    "daily_user_stats": ("daily_user_stats", "user_engagement_warehouse"),
    "trending": ("artist_popularity_warehouse",),
    "setlist_prediction_scores": SCORE_TABLES,
    "voting_patterns_warehouse": ("voting_patterns_warehouse",),
    "user_behavior_warehouse": ("user_behavior_warehouse",),
    "refresh_views": MATERIALIZED_VIEWS,
}

# After the day stage: what a step reads that another step writes. A step runs in a wave
# after those it reads; ALL_STEPS lists every step after what it reads (a test checks it),
# so it is the one order.
READS: dict[str, frozenset[str]] = {
    # fans' mean prediction F1 comes from the setlist scores
    "voting_patterns_warehouse": frozenset({"setlist_prediction_scores"}),
    "user_behavior_warehouse": frozenset({"voting_patterns_warehouse"}),
    "refresh_views": frozenset({"trending"}),
}
# Incremental runs: the latest-day WAU/MAU shortcut reads user_behavior_warehouse.
READS_INCREMENTAL = {**READS, "platform_windows": frozenset({"user_behavior_warehouse"})}
# Steps that run alone, after everything before them.
BARRIER_STEPS = frozenset({"quality_checks", "analyze", "maintenance"})
# Steps that read no day-grained table (voting: app.setlist_votes, the shows and setlists,
# and the run's users, known before its days load): an incremental run, whose day stage is
# a day or two on one connection, starts them alongside it on a connection of their own.
ALONGSIDE_DAYS = frozenset({"voting_patterns_warehouse"})


def qualified(table: str) -> sql.Identifier:
    """A warehouse table or view as an identifier for composed statements (psycopg.sql)."""
    return sql.Identifier("analytics", table)


def unknown_steps_message(steps: Sequence[str]) -> str | None:
    """Why these step names cannot be run (None: they all can): the folded ones with the
    step that now does their work, then the unknown ones with the known list."""
    folded = [s for s in steps if s in FOLDED_STEPS]
    unknown = [s for s in steps if s not in ALL_STEPS and s not in FOLDED_STEPS]
    parts = [f"step {s!r} is now part of step {FOLDED_STEPS[s]!r}" for s in folded]
    if unknown:
        parts.append(f"unknown step(s) {unknown}; known: {', '.join(ALL_STEPS)}")
    return "; ".join(parts) or None


def normalise_steps(steps: Sequence[str] | None, mode: str) -> list[str]:
    """Validate and order steps; any day step brings `extract` with it."""
    if not steps:
        return list(DEFAULT_STEPS[mode])
    problem = unknown_steps_message(steps)
    if problem:
        raise ValueError(f"ETL steps: {problem}")
    wanted = set(steps)
    if wanted & set(DAY_STEPS[1:]):
        wanted.add("extract")
    return [s for s in ALL_STEPS if s in wanted]


def alongside_days(steps: Sequence[str], *, incremental: bool) -> list[str]:
    """The steps of `steps` an incremental run starts alongside its day stage: those that
    read no day-grained table, unless a step they read is in the run too."""
    if not incremental:
        return []
    wanted = set(steps)
    return [
        s
        for s in ALL_STEPS
        if s in wanted and s in ALONGSIDE_DAYS and not READS_INCREMENTAL.get(s, set()) & wanted
    ]


def waves(steps: Sequence[str], *, incremental: bool) -> list[list[str]]:
    """Group the steps after the day stage into waves whose steps run side by side on
    separate connections (each in its own transaction, each writing its own table); a
    step takes the first wave after every step it reads. Checks, ANALYZE and maintenance
    run alone, after everything else."""
    reads = READS_INCREMENTAL if incremental else READS
    wanted = [s for s in ALL_STEPS if s in set(steps)]
    wave_of: dict[str, int] = {}
    for step in wanted:  # ALL_STEPS has what a step reads before it: its wave is known
        if step not in BARRIER_STEPS:
            after = [wave_of[r] for r in reads.get(step, ()) if r in wave_of]
            wave_of[step] = max(after, default=-1) + 1
    out: list[list[str]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
    for step, wave in wave_of.items():
        out[wave].append(step)
    return out + [[s] for s in wanted if s in BARRIER_STEPS]
